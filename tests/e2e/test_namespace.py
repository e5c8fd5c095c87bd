"""One import name: the wheel installs `treadle` (and the `server` entry module), nothing else.

The wheel is built from this checkout and installed into a fresh virtualenv; applications that
have their own `config` package, `protocol.py` and `server` package are served from their own
directory by each of the three commands (`treadle`, `python -m treadle`, `python -m server`)
and must see their own modules, not treadle's.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, RunningServer, start_server

APP_FILES = {
    "config/__init__.py": "",
    "config/settings.py": "SECRET_KEY = 'from-the-app-config'\n",
    "config/wsgi.py": (
        "import protocol\n"
        "from config.settings import SECRET_KEY\n"
        "def application(environ, start_response):\n"
        "    body = f'{SECRET_KEY} {protocol.NAME}'.encode()\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [body]\n"
    ),
    "protocol.py": "NAME = 'from-the-app-protocol'\n",
}
# In a directory of its own: there, `python -m server` runs the application's own package by
# Python's rule (cwd first), which docs/index.md says; `treadle` serves it.
SERVER_APP_FILES = {
    "server/__init__.py": "",
    "server/app.py": (
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'from-the-app-server']\n"
    ),
}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv with the wheel of this checkout installed (dependencies borrowed)."""
    where = tmp_path_factory.mktemp("namespace")
    wheels = where / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--disable-pip-version-check", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("treadle-*.whl")
    top_levels = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {n for n in top_levels if not n.endswith(".dist-info")} == {"treadle", "server.py"}
    env_dir = where / "venv"
    # h2 and the other dependencies come from this interpreter's site-packages; treadle itself
    # must come from the wheel, which the venv's own site-packages puts first.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)],
                   check=True, timeout=120)
    # --ignore-installed: where this interpreter already has treadle (CI installs it), pip would
    # call the wheel satisfied and install nothing into the venv.
    subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--ignore-installed", "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    yield env_dir


def _write(where: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(text)
    return where


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("app"), APP_FILES)


def _get(server: RunningServer) -> str:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200, server.log()
        return response.read().decode()
    finally:
        conn.close()


def test_the_venv_runs_the_wheel_not_the_checkout(venv: Path) -> None:
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import treadle.server.cli as c; print(c.__file__)"],
        cwd="/", capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert where.startswith(str(venv)), where


@pytest.mark.parametrize("command", ["treadle", "python -m treadle", "python -m server"])
def test_an_app_with_its_own_config_and_protocol_modules(
        venv: Path, app_dir: Path, tmp_path: Path, command: str) -> None:
    answer = _serve_once(venv, command, "config.wsgi", app_dir, tmp_path)
    assert answer == "from-the-app-config from-the-app-protocol"


@pytest.mark.parametrize("command", ["treadle", "python -m treadle"])
def test_an_app_in_its_own_server_package(venv: Path, tmp_path: Path, command: str) -> None:
    app_dir = _write(tmp_path / "app", SERVER_APP_FILES)
    answer = _serve_once(venv, command, "server.app:app", app_dir, tmp_path)
    assert answer == "from-the-app-server"


def _serve_once(venv: Path, command: str, app: str, app_dir: Path, tmp_path: Path) -> str:
    """Serve `app` from `app_dir` with the venv's `command`; one GET's body."""
    argv = command.split()
    argv[0] = str(venv / "bin" / argv[0])
    server = start_server(app, log_path=tmp_path / "server.log", cwd=app_dir,
                          command=tuple(argv), repo_on_path=False)
    try:
        return _get(server)
    finally:
        assert server.stop() == 0, server.log()


def test_django_startproject_config_is_allowed(venv: Path, tmp_path: Path) -> None:
    """`django-admin startproject config .` refuses names of importable modules: with
    treadle installed, `config` must not be one (cookiecutter-django's layout)."""
    project = tmp_path / "project"
    project.mkdir()
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "django", "startproject",
                           "config", str(project)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (project / "config" / "wsgi.py").exists()
