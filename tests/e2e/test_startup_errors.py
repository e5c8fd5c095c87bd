"""What a newcomer sees when treadle cannot start, through the real command.

An application that cannot be loaded: its own traceback (file, line, caret for a SyntaxError;
importlib's and treadle's frames left out), then the one-line summary, exit status 3 (2 under
--check-config). gunicorn's settings that treadle lacks, as flags, variables or file keys: one
line each naming what to do instead, every one in the same run, exit status 2. A Python
settings file: "treadle reads TOML" and the file's settings in TOML.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from treadle.config import gunicorn

from tests.e2e.conftest import run_server

APP_FILES = {
    "deep.py": "import helper\n",
    "helper.py": "x = 1\ny = x / 0\n",
    "broken_syntax.py": "def f(:\n    pass\n",
    "needs_dep.py": "import no_such_dependency_xyz\n",
    "factory.py": "def create_app():\n    raise RuntimeError('no DATABASE_URL')\n",
}


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    for name, text in APP_FILES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def serve_app(app_dir: Path, app: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return run_server(app, "--chdir", str(app_dir), "--bind", "127.0.0.1:0", *flags)


def test_import_failure_shows_the_apps_traceback_then_one_line(app_dir: Path) -> None:
    result = serve_app(app_dir, "deep:app", "--log-level", "debug")
    assert result.returncode == 3, result.stderr
    assert result.stderr == (
        "Traceback (most recent call last):\n"
        f'  File "{app_dir / "deep.py"}", line 1, in <module>\n'
        "    import helper\n"
        f'  File "{app_dir / "helper.py"}", line 2, in <module>\n'
        "    y = x / 0\n"
        + ("        ~~^~~\n" if "~" in result.stderr else "")
        + "ZeroDivisionError: division by zero\n"
        "treadle: error: cannot load the application: importing 'deep' failed: "
        "ZeroDivisionError: division by zero\n"
    )


def test_syntax_error_shows_file_line_and_caret(app_dir: Path) -> None:
    result = serve_app(app_dir, "broken_syntax:app")
    assert result.returncode == 3, result.stderr
    lines = result.stderr.splitlines()
    assert lines[:2] == [f'  File "{app_dir / "broken_syntax.py"}", line 1', "    def f(:"]
    assert lines[2].strip() == "^"
    assert lines[3].startswith("SyntaxError: ")
    assert lines[4].startswith("treadle: error: cannot load the application: importing "
                               "'broken_syntax' failed: SyntaxError")
    assert "importlib" not in result.stderr and "server/app.py" not in result.stderr


def test_missing_dependency_inside_the_app_shows_where_it_is_imported(app_dir: Path) -> None:
    result = serve_app(app_dir, "needs_dep:app")
    assert result.returncode == 3, result.stderr
    assert f'File "{app_dir / "needs_dep.py"}", line 1, in <module>' in result.stderr
    assert "    import no_such_dependency_xyz\n" in result.stderr
    assert result.stderr.endswith(
        "treadle: error: cannot load the application: importing 'needs_dep' failed: "
        "ModuleNotFoundError: No module named 'no_such_dependency_xyz'\n")


def test_app_module_that_does_not_exist_is_one_line(app_dir: Path) -> None:
    for app in ("no_such_app_xyz:app", "deep_missing.wsgi:app"):
        result = serve_app(app_dir, app)
        assert result.returncode == 3, result.stderr
        module = app.split(":")[0]
        assert result.stderr == (
            f"treadle: error: cannot load the application: no module named {module!r}\n")


def test_failing_factory_shows_its_traceback(app_dir: Path) -> None:
    result = serve_app(app_dir, "factory:create_app()")
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("Traceback (most recent call last):\n"
                                    f'  File "{app_dir / "factory.py"}", line 2, in create_app\n')
    assert "server/app.py" not in result.stderr
    assert result.stderr.endswith(
        "treadle: error: cannot load the application: calling factory:create_app() failed: "
        "RuntimeError: no DATABASE_URL\n")


def test_check_config_shows_the_traceback_too(app_dir: Path) -> None:
    result = run_server("--check-config", "--chdir", str(app_dir), "deep:app")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert f'File "{app_dir / "helper.py"}", line 2, in <module>' in result.stderr
    assert result.stderr.endswith(
        "treadle: error: wsgi_app (command line APP): importing 'deep' failed: "
        "ZeroDivisionError: division by zero\n")


# --- gunicorn's settings and files ----------------------------------------------------------


def advice_line(source: str, name: str) -> str:
    entry = gunicorn.by_name(name)
    assert entry is not None
    return f"treadle: error: {source}: {gunicorn.explain(entry)}"


def test_gunicorn_flags_each_get_their_advice_in_one_run() -> None:
    result = run_server("-w", "4", "-k", "gevent", "--timeout", "30", "--reload-engine",
                        "poll", "--spew", "--daemon", "examples.hello:app")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [  # -w and --timeout are treadle's too: accepted
        advice_line("command line -k", "worker_class"),
        advice_line("command line --reload-engine", "reload_engine"),
        advice_line("command line --spew", "spew"),
        advice_line("command line --daemon", "daemon"),
    ]
    assert "did you mean" not in result.stderr and "--worker-connections" not in result.stderr


def test_gunicorn_variables_and_keys_and_typos_all_reported(tmp_path: Path) -> None:
    settings = tmp_path / "treadle.toml"
    settings.write_text("daemon = true\nsyslog_addr = 'udp://x:1'\nthreds = 2\nthreads = 2\n")
    result = run_server("--config", str(settings), "examples.hello:app",
                        env={"TREADLE_DAEMON": "1", "TREADLE_WORKER_CLASS": "gevent"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        advice_line("env TREADLE_DAEMON", "daemon"),
        advice_line("env TREADLE_WORKER_CLASS", "worker_class"),
        advice_line(f"file {settings}, key 'daemon'", "daemon"),
        advice_line(f"file {settings}, key 'syslog_addr'", "syslog_addr"),
        f"treadle: error: file {settings}: unknown setting 'threds' (did you mean 'threads'?)",
    ]


def test_a_gunicorn_conf_py_gets_treadle_reads_toml(tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("bind = '0.0.0.0:8000'\nworker_class = 'gevent'\nthreads = 8\n"
                    "accesslog = '-'\nspew = True\n")
    result = run_server("-c", str(conf), "examples.hello:app")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == (f"treadle: error: file {conf}: treadle reads TOML, not a Python config "
                        "file like gunicorn's (see docs/gunicorn.md); its settings in TOML "
                        "would be:")
    assert lines[1:] == ['bind = "0.0.0.0:8000"', lines[2], "threads = 8", 'accesslog = "-"',
                         lines[5]]
    assert lines[2].startswith("# worker_class: not in treadle: ")
    assert lines[5].startswith("# spew: not in treadle: ")
