"""The real-application matrix, Flask: the mega-tutorial's layout, served unchanged.

tests/e2e/realapps/microblog is copied to a temporary directory and served from there as a
user would (`cd microblog && python -m server microblog:app`): its own top-level `config.py`
(`from config import Config`), an `app/` package, `microblog.py`. httpx checks Flask's session
cookie, a 20 MiB multipart upload, a streamed response whose first chunk arrives while the
generator is still held, a view that raises (500, and the server keeps serving) and a 404.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import ROOT, RunningServer

MICROBLOG = ROOT / "tests" / "e2e" / "realapps" / "microblog"
TIMEOUT_S = 15.0
UPLOAD_BYTES = 20 << 20


@pytest.fixture(scope="module")
def microblog(serve_module, tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    project = tmp_path_factory.mktemp("apps") / "microblog"
    shutil.copytree(MICROBLOG, project)
    return serve_module("microblog:app", cwd=project, repo_on_path=False)


@pytest.fixture
def client(microblog: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=microblog.url, timeout=TIMEOUT_S) as client:
        yield client


def test_the_app_gets_its_own_config(client: httpx.Client, microblog: RunningServer) -> None:
    response = client.get("/secret-key")
    assert response.status_code == 200, microblog.log()
    assert response.json() == {"secret_key": "you-will-never-guess"}


def test_login_kept_in_the_session_cookie(client: httpx.Client) -> None:
    first = client.get("/index")
    assert (first.status_code, first.headers["location"]) == (302, "/login")
    logged_in = client.post("/login", data={"username": "miguel"})
    assert (logged_in.status_code, logged_in.headers["location"]) == (302, "/index")
    assert "session" in client.cookies
    assert client.get("/index").text == "Hi, miguel!"
    # The cookie is the whole session: another client presenting it is the same user.
    with httpx.Client(base_url=client.base_url, timeout=TIMEOUT_S,
                      cookies={"session": client.cookies["session"]}) as other:
        assert other.get("/index").text == "Hi, miguel!"
    assert client.get("/logout").status_code == 302
    assert client.get("/index").status_code == 302


def test_20mib_multipart_upload(client: httpx.Client) -> None:
    data = os.urandom(UPLOAD_BYTES)
    response = client.post("/upload", files={"file": ("blob.bin", data)},
                           data={"note": "twenty mebibytes"})
    assert response.status_code == 200
    assert response.json() == {"filename": "blob.bin", "size": UPLOAD_BYTES,
                               "sha256": hashlib.sha256(data).hexdigest(),
                               "note": "twenty mebibytes"}


def test_streamed_response_arrives_while_the_generator_runs(client: httpx.Client,
                                                            microblog: RunningServer) -> None:
    with client.stream("GET", "/stream?parts=4") as response:
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        pieces = response.iter_raw()
        received = b""
        while b"part 0;" not in received:  # the generator now waits for /stream/release
            received += next(pieces)
        with httpx.Client(base_url=microblog.url, timeout=TIMEOUT_S) as other:
            assert other.get("/stream/release").text == "released"
        received += b"".join(pieces)
    assert received == b"part 0;part 1;part 2;part 3;"


def test_an_exception_is_a_500_and_the_server_keeps_serving(client: httpx.Client,
                                                           microblog: RunningServer) -> None:
    failed = client.get("/boom")
    assert failed.status_code == 500
    assert "Internal Server Error" in failed.text  # Flask's own error page
    assert "Exception on /boom [GET]" in microblog.log()
    assert "ZeroDivisionError" in microblog.log()
    after = client.get("/secret-key")  # on the same keep-alive connection
    assert after.status_code == 200


def test_unknown_path_is_flasks_404(client: httpx.Client) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Not Found" in response.text
