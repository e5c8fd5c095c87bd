"""The real-application matrix, Django: projects made by Django's own tools, served unchanged.

`django-admin startproject` runs for real into a temporary directory, then `manage.py migrate`
and `createsuperuser`; the admin login flow (CSRF token and cookie, POST, redirect, the
logged-in page) runs with httpx keeping cookies, over HTTP/1.1 and over HTTP/2 with TLS.
A cookiecutter-django layout (tests/e2e/realapps/cookiecutter_django: a `config/` settings
package, `config/wsgi.py`, apps under the project package) is served with `--chdir`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ROOT, RunningServer, server_env
from tests.e2e.test_http2_apps import Certificates

REALAPPS = ROOT / "tests" / "e2e" / "realapps"
TIMEOUT_S = 15.0
ADMIN_USER = "admin"
ADMIN_PASSWORD = "treadle-e2e-password-1"
# What a deployment adds to what startproject wrote: its own settings module on top, chosen
# with DJANGO_SETTINGS_MODULE (startproject's wsgi.py only sets a default). Same-origin POSTs
# need no CSRF_TRUSTED_ORIGINS: Django compares Origin with the scheme it sees and the Host.
DEPLOY_SETTINGS = """\
from mysite.settings import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
"""
DEPLOY_ENV = {"DJANGO_SETTINGS_MODULE": "mysite.deploy_settings"}


def _manage(project: Path, *argv: str, env: dict[str, str] | None = None) -> None:
    """`python manage.py ARGV` in `project`, as a user types it; fails with Django's output."""
    done = subprocess.run([sys.executable, "manage.py", *argv], cwd=project,
                          env=server_env({**DEPLOY_ENV, **(env or {})}, repo_on_path=False),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"manage.py {' '.join(argv)}:\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def mysite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """startproject, the deployment settings, migrate and a superuser: once per module."""
    project = tmp_path_factory.mktemp("mysite")
    made = subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(project)],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    (project / "mysite" / "deploy_settings.py").write_text(DEPLOY_SETTINGS)
    _manage(project, "migrate", "--noinput", "-v", "0")
    _manage(project, "createsuperuser", "--noinput", "--username", ADMIN_USER,
            "--email", "admin@example.com", env={"DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD})
    return project


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture(scope="module")
def plain_server(serve_module, mysite: Path) -> RunningServer:
    """`cd mysite && python -m server mysite.wsgi`, with only the project on the path."""
    return serve_module("mysite.wsgi", cwd=mysite, repo_on_path=False, env=DEPLOY_ENV)


@pytest.fixture(scope="module")
def tls_server(serve_module, mysite: Path, certs: Certificates) -> RunningServer:
    return serve_module("mysite.wsgi", "--certfile", certs.server_pem, cwd=mysite,
                        repo_on_path=False, env=DEPLOY_ENV)


def _csrf_form_token(page: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found, f"no CSRF token in the login form:\n{page[:2000]}"
    return found[1]


def _admin_login(client: httpx.Client, server: RunningServer) -> httpx.Response:
    """The browser's admin login: the form, the POST with token and cookie, the redirect."""
    login = client.get("/admin/login/?next=/admin/")
    assert login.status_code == 200, server.log()
    assert "csrftoken" in client.cookies, login.headers
    token = _csrf_form_token(login.text)
    origin = str(client.base_url).rstrip("/")
    posted = client.post("/admin/login/?next=/admin/",
                         data={"csrfmiddlewaretoken": token, "username": ADMIN_USER,
                               "password": ADMIN_PASSWORD, "next": "/admin/"},
                         headers={"Origin": origin, "Referer": f"{origin}/admin/login/"})
    assert posted.status_code == 302, posted.text[:2000]
    assert posted.headers["location"] == "/admin/"
    assert "sessionid" in client.cookies
    index = client.get("/admin/")
    assert index.status_code == 200, server.log()
    assert "Site administration" in index.text
    assert f"<strong>{ADMIN_USER}</strong>" in index.text  # "Welcome, admin."
    return index


def test_admin_login_over_http11(plain_server: RunningServer) -> None:
    with httpx.Client(base_url=plain_server.url, timeout=TIMEOUT_S) as client:
        index = _admin_login(client, plain_server)
        assert index.http_version == "HTTP/1.1"
        # The session is real: logging out ends it, and /admin/ then sends us to the login.
        token = client.cookies["csrftoken"]
        out = client.post("/admin/logout/", data={"csrfmiddlewaretoken": token},
                          headers={"Origin": plain_server.url})
        assert out.status_code == 200, out.text[:2000]
        again = client.get("/admin/")
        assert again.status_code == 302
        assert again.headers["location"].startswith("/admin/login/")


def test_admin_login_over_http2_with_tls(tls_server: RunningServer, certs: Certificates) -> None:
    base = f"https://127.0.0.1:{tls_server.port}"
    with httpx.Client(base_url=base, http2=True, verify=certs.client_context(),
                      timeout=TIMEOUT_S) as client:
        index = _admin_login(client, tls_server)
        assert index.http_version == "HTTP/2"


def test_csrf_is_enforced_without_the_token(plain_server: RunningServer) -> None:
    """The flow above passes because Django's checks pass, not because they are off."""
    with httpx.Client(base_url=plain_server.url, timeout=TIMEOUT_S) as client:
        assert client.get("/admin/login/").status_code == 200, plain_server.log()
        refused = client.post("/admin/login/", data={"username": ADMIN_USER,
                                                     "password": ADMIN_PASSWORD},
                              headers={"Origin": plain_server.url})
        assert refused.status_code == 403
        assert "sessionid" not in client.cookies


# -- cookiecutter-django's layout: a `config` package of its own ------------------------------


@pytest.fixture(scope="module")
def cookiecutter_server(serve_module, tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    """`python -m server --chdir PROJECT config.wsgi --env DJANGO_SETTINGS_MODULE=...`."""
    where = tmp_path_factory.mktemp("cookiecutter")
    project = where / "myproject"
    shutil.copytree(REALAPPS / "cookiecutter_django", project)
    return serve_module("config.wsgi", "--chdir", str(project),
                        "--env", "DJANGO_SETTINGS_MODULE=config.settings.local",
                        cwd=where, repo_on_path=False)


def test_cookiecutter_layout_serves_its_view(cookiecutter_server: RunningServer) -> None:
    response = httpx.get(cookiecutter_server.url + "/", timeout=TIMEOUT_S)
    assert response.status_code == 200, cookiecutter_server.log()
    page = response.json()
    assert page["settings"] == "config.settings.local"
    assert page["config_package"].endswith("myproject/config/__init__.py")
    assert (page["debug"], page["secure"]) == (True, False)
    assert page["host"] == f"127.0.0.1:{cookiecutter_server.port}"


def test_cookiecutter_layout_serves_the_admin_login_page(
        cookiecutter_server: RunningServer) -> None:
    with httpx.Client(base_url=cookiecutter_server.url, timeout=TIMEOUT_S) as client:
        login = client.get("/admin/login/")
        assert login.status_code == 200, cookiecutter_server.log()
        assert "csrftoken" in client.cookies
        _csrf_form_token(login.text)
        assert client.get("/no/such/page").status_code == 404
