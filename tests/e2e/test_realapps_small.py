"""The real-application matrix, Falcon, Pyramid and Bottle: one small application each.

tests/e2e/realapps/small holds the three (each written the way its framework's documentation
writes one); they are copied to a temporary directory and served from there
(`python -m server falcon_app:app`, ...). The same checks run against each over one
keep-alive httpx connection: a query string, a JSON POST body, a path parameter, 404s.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ROOT, RunningServer

SMALL_APPS = ROOT / "tests" / "e2e" / "realapps" / "small"
TIMEOUT_S = 15.0
FRAMEWORKS = ["falcon", "pyramid", "bottle"]


@pytest.fixture(scope="module")
def apps_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("apps") / "small"
    shutil.copytree(SMALL_APPS, where)
    return where


@pytest.fixture(scope="module", params=FRAMEWORKS)
def served(request: pytest.FixtureRequest, serve_module, apps_dir: Path) -> RunningServer:
    return serve_module(f"{request.param}_app:app", cwd=apps_dir, repo_on_path=False)


@pytest.fixture
def client(served: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=TIMEOUT_S) as client:
        yield client


def test_query_string(client: httpx.Client, served: RunningServer) -> None:
    response = client.get("/hello", params={"name": "Zoë & co"})
    assert response.status_code == 200, served.log()
    assert response.headers["content-type"].startswith("application/json")
    page = response.json()
    assert page["hello"] == "Zoë & co"
    assert page["framework"] in FRAMEWORKS
    assert client.get("/hello").json()["hello"] == "world"


def test_json_post_body(client: httpx.Client) -> None:
    sent = {"numbers": [1, 2, 3], "text": "ünïcödé", "nested": {"ok": True}}
    response = client.post("/echo", json=sent)
    assert response.status_code == 201
    page = response.json()
    assert page["received"] == sent
    assert page["bytes"] == len(response.request.content)


def test_path_parameter_and_404s(client: httpx.Client) -> None:
    assert client.get("/items/1").json() == {"id": 1, "name": "treadle"}
    assert client.get("/items/2").status_code == 404
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/items/1").status_code == 200  # the connection outlived the 404s
