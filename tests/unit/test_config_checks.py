"""check_paths, the generated reference, and the command line's statuses (in process)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from treadle.config import Config, check_paths, load, settings_markdown
from treadle.config.reference import REGENERATE
from treadle.server.cli import main


def test_settings_that_name_nothing_are_fine(tmp_path: Path) -> None:
    assert check_paths(load([], {}, tmp_path)) == []


def test_existing_files_and_directories_are_fine(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "access.log").write_text("")
    argv = [
        "--chdir", ".", "--pid", "t.pid", "--access-logfile", "logs/access.log",
        "--error-logfile", "logs/error.log", "-b", "unix:logs/t.sock", "-u", "0", "-g", "0",
    ]
    assert check_paths(load(argv, {}, tmp_path)) == []


def test_each_problem_is_one_line_naming_setting_and_source(tmp_path: Path) -> None:
    (tmp_path / "treadle.toml").write_text('pidfile = "no/such/dir/t.pid"\n')
    (tmp_path / "adir").mkdir()
    argv = [
        "--chdir", "missing", "--access-logfile", "adir", "-b", "unix:gone/t.sock",
        "-b", "fd://999",
    ]
    cfg = load(argv, {"TREADLE_ERRORLOG": "nowhere/e.log"}, tmp_path)
    assert check_paths(cfg) == [
        f"chdir (command line --chdir): no such directory: {tmp_path / 'missing'}",
        f"pidfile (file treadle.toml): directory {tmp_path / 'no/such/dir'} does not exist",
        f"accesslog (command line --access-logfile): {tmp_path / 'adir'} is a directory",
        f"errorlog (env TREADLE_ERRORLOG): directory {tmp_path / 'nowhere'} does not exist",
        f"bind (command line --bind): unix:{tmp_path / 'gone/t.sock'}: "
        f"directory {tmp_path / 'gone'} does not exist",
        "bind (command line --bind): fd://999: file descriptor 999 is not open",
    ]


def test_fd_bind_must_be_a_socket(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as plain, socket.socket() as sock:
        cfg = load(["-b", f"fd://{plain.fileno()}", "-b", f"fd://{sock.fileno()}"], {}, tmp_path)
        assert check_paths(cfg) == [
            f"bind (command line --bind): fd://{plain.fileno()}: "
            f"file descriptor {plain.fileno()} is not a socket"
        ]


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="users and groups are Unix")
def test_unknown_user_and_group_names(tmp_path: Path) -> None:
    cfg = load(["-u", "no-such-user-xyz", "-g", "no-such-group-xyz"], {}, tmp_path)
    assert check_paths(cfg) == [
        "user (command line --user): no such user: no-such-user-xyz",
        "group (command line --group): no such group: no-such-group-xyz",
    ]
    assert check_paths(load(["-u", "root", "-g", "54321"], {}, tmp_path)) == []


# the checkout's docs, also when treadle is installed from a wheel (CI's per-Python venvs)
DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_docs_settings_md_is_current() -> None:
    current = DOCS_PATH.read_text(encoding="utf-8") if DOCS_PATH.exists() else ""
    assert current == settings_markdown(), (
        f"docs/settings.md is stale: run `{REGENERATE}` from the repository root and commit it"
    )


def test_the_reference_covers_every_setting_and_status() -> None:
    text = settings_markdown()
    for name in Config.__dataclass_fields__:
        if name != "sources":
            assert f"### `{name}`" in text
    assert "| 4 | a listening socket cannot be opened" in text


# --- server/__main__.main, in process (the subprocess runs are in tests/e2e) ---------------


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("TREADLE_"):
            monkeypatch.delenv(name)
    return tmp_path


def test_main_config_error_is_one_line_and_status_2(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--backlog", "0", "mod:app"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "treadle: error: command line --backlog: expected an integer from 1 to 65535, got '0'\n"
    )
    assert captured.out == ""


def test_main_without_app_is_status_2(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("treadle: error: no application given") and err.count("\n") == 1


def test_main_print_config(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--print-config", "--threads", "3"]) == 0
    assert "threads = 3  # command line --threads\n" in capsys.readouterr().out


def test_main_check_config_reports_every_problem(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check-config", "--chdir", "gone", "--pid", "x/y.pid"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith("treadle: error: ") for line in lines)


def test_main_check_config_without_app_is_fine(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check-config"]) == 0
    assert "configuration OK" in capsys.readouterr().err


def test_main_help_and_version_return_0(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--help"]) == 0
    assert "Exit statuses:" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("treadle ")
