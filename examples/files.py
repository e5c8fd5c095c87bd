"""Serving files with wsgi.file_wrapper: treadle sends them with os.sendfile where it can.

    STATIC_ROOT=/srv/files treadle examples.files:app
    curl -O http://127.0.0.1:8000/some/file.pdf

Returning `environ["wsgi.file_wrapper"](file)` lets treadle copy a regular file from the page
cache to the socket in the kernel (os.sendfile) instead of reading it through Python; over
TLS, which the kernel cannot encrypt, it is read in blocks instead. treadle adds
Content-Length itself when the application gives none. Paths are resolved inside STATIC_ROOT
(default: the directory of this file); anything that leaves it is a 404.
"""

import mimetypes
import os

ROOT = os.path.realpath(os.environ.get("STATIC_ROOT") or os.path.dirname(__file__))


def app(environ, start_response):
    if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
        return _answer(start_response, "405 Method Not Allowed", b"GET or HEAD only\n")
    # PEP 3333: PATH_INFO holds the URL's bytes as latin-1; file names here are UTF-8.
    name = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace").lstrip("/")
    path = os.path.realpath(os.path.join(ROOT, name)) if "\0" not in name else ""
    if not path.startswith(ROOT + os.sep) or not os.path.isfile(path):
        return _answer(start_response, "404 Not Found", b"not found\n")
    kind, _ = mimetypes.guess_type(path)
    handle = open(path, "rb")  # closed by the server (the wrapper's close) after sending
    start_response("200 OK", [("Content-Type", kind or "application/octet-stream"),
                              ("Content-Length", str(os.fstat(handle.fileno()).st_size))])
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is None:  # optional in PEP 3333: without it, send the file block by block
        return _blocks(handle)
    return wrapper(handle, 65536)


def _blocks(handle):
    with handle:
        while block := handle.read(65536):
            yield block


def _answer(start_response, status, body):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
