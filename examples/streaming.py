"""A streaming response: each chunk goes to the client as the generator yields it.

    treadle examples.streaming:app
    curl -N 'http://127.0.0.1:8000/?count=5&interval=1'

The application sets no Content-Length, so on HTTP/1.1 treadle frames the body with
`Transfer-Encoding: chunked` and sends every non-empty chunk as soon as it is yielded (an
HTTP/1.0 client gets the bytes followed by a close). A worker thread is held for as long as the
generator runs: size `threads` for the number of streams open at once.
"""

import time
from urllib.parse import parse_qs


def app(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        count = max(1, min(int(query.get("count", ["5"])[0]), 1000))
        interval_s = max(0.0, min(float(query.get("interval", ["0.5"])[0]), 60.0))
    except ValueError:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"count is an integer, interval a number of seconds\n"]
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Cache-Control", "no-cache")])
    return ticks(count, interval_s)


def ticks(count, interval_s):
    for number in range(1, count + 1):
        if number > 1:
            time.sleep(interval_s)
        yield f"tick {number} of {count}\n".encode()
