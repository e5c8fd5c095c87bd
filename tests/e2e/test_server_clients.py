"""Real clients and a real framework: httpx, curl and Flask against the running server."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.conftest import require_tool
from tests.e2e.conftest import RunningServer


@pytest.fixture(scope="module")
def flask_server(serve_module) -> RunningServer:
    return serve_module("tests.e2e.apps_flask:app")


def test_flask_routes_forms_streams_and_errors(flask_server):
    with httpx.Client(base_url=flask_server.url, timeout=10) as client:
        assert client.get("/hello/world").text == "Hello, world!"
        posted = client.post("/form", data={"a": "1", "b": "two"},
                             files={"file": ("f.txt", b"file body")},
                             headers={"X-Forwarded-Proto": "https"})
        assert posted.status_code == 200
        assert posted.json() == {"fields": {"a": "1", "b": "two"}, "file": "file body",
                                 "url": f"https://127.0.0.1:{flask_server.port}/form",
                                 "scheme": "https", "remote": "127.0.0.1"}
        streamed = client.get("/stream")
        assert streamed.text == "0;1;2;"
        assert streamed.headers["transfer-encoding"] == "chunked"
        assert client.get("/fail").status_code == 500  # Flask answers its own errors
        assert client.get("/missing").status_code == 404
    assert "flask view failed" in flask_server.log()


def test_curl_upload_chunked_and_head(flask_server, serve):
    curl = require_tool("curl")
    server = serve("tests.e2e.apps_core:app")
    done = subprocess.run([curl, "-s", "-H", "Transfer-Encoding: chunked", "--data-binary",
                           "@-", server.url + "/echo"], input=b"streamed by curl",
                          capture_output=True, timeout=30)
    assert done.stdout == b"streamed by curl"
    head = subprocess.run([curl, "-sI", server.url + "/big?n=10"], capture_output=True,
                          text=True, timeout=30)
    assert head.stdout.startswith("HTTP/1.1 200 OK")
    assert "content-length: 10" in head.stdout.lower()
    flask = subprocess.run([curl, "-s", "-F", "a=1", "-F", "file=@-", flask_server.url + "/form"],
                           input=b"from stdin", capture_output=True, timeout=30)
    assert b'"file":"from stdin"' in flask.stdout


def test_httpx_streams_a_large_response(serve):
    server = serve("tests.e2e.apps_core:app")
    with httpx.Client(base_url=server.url, timeout=30) as client, \
            client.stream("GET", "/big?n=5000000") as response:
        total = sum(len(chunk) for chunk in response.iter_bytes())
    assert total == 5_000_000
