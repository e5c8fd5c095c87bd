"""A chunked upload consumed as it arrives: the body is never held whole in memory.

    treadle examples.upload:app
    curl -T big.iso -H 'Transfer-Encoding: chunked' http://127.0.0.1:8000/upload

treadle receives a body of up to request_buffer_size (1 MiB; chunked or not) whole before the
application runs, so a slow uploader holds no thread; a larger one reaches the application
through wsgi.input as the bytes come off the socket (past its first MiB, for a chunked one);
`read(size)` returns as soon as `size` bytes (or the end of the body) are there. This
application reads 64 KiB at a time, hashes each block, and reports its progress to
wsgi.errors (treadle's error log). A body cut short or malformed makes the read raise (an
OSError) instead of returning a short body as if it were complete: the client then gets a 400
(or 408 after body_timeout, or below min_request_rate) and the connection is closed.
"""

import hashlib
import json

BLOCK_BYTES = 64 * 1024


def app(environ, start_response):
    if environ["REQUEST_METHOD"] not in ("POST", "PUT"):
        start_response("405 Method Not Allowed", [("Allow", "POST, PUT"),
                                                  ("Content-Type", "text/plain")])
        return [b"send the file with POST or PUT\n"]
    body = environ["wsgi.input"]
    progress = environ["wsgi.errors"]
    digest = hashlib.sha256()
    received = 0
    while True:
        block = body.read(BLOCK_BYTES)
        if not block:
            break
        digest.update(block)
        received += len(block)
        progress.write(f"upload {environ['PATH_INFO']}: {received} bytes so far\n")
        progress.flush()
    answer = json.dumps({"bytes": received, "sha256": digest.hexdigest()}).encode() + b"\n"
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(answer)))])
    return [answer]
