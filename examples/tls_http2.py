"""HTTPS with HTTP/2: add a certificate, and clients that speak HTTP/2 get it.

    # a development certificate for localhost (in production: your CA's, e.g. Let's Encrypt)
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \\
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout key.pem -out cert.pem
    treadle examples.tls_http2:app --bind 127.0.0.1:8443 \\
        --certfile cert.pem --keyfile key.pem
    curl --cacert cert.pem https://localhost:8443/            # HTTP/2, chosen by ALPN
    curl --cacert cert.pem --http1.1 https://localhost:8443/  # HTTP/1.1 over TLS

The application is the same WSGI callable as on HTTP/1.1: nothing in it knows about streams.
The streams of one HTTP/2 connection run concurrently on the worker threads, so the slow
page (`/slow`) does not hold up the other requests a browser sends on the same connection.
"""

import time


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(1.0)
    body = (
        f"{environ['SERVER_PROTOCOL']} over {environ['wsgi.url_scheme']}"
        f" for {environ['PATH_INFO']}\n"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
