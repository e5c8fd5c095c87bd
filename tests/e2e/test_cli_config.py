"""`python -m server` as a real subprocess on the example settings files.

--print-config and --check-config exit before serving, so these need no sockets; the app
import in --check-config goes through server/app.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import trustme

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "examples/treadle.toml"
PYPROJECT_EXAMPLE = "examples/pyproject-example/pyproject.toml"


def treadle(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TREADLE_")}
    environ.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("treadle: error: ")
    return lines[0].removeprefix("treadle: error: ")


def bad_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / EXAMPLE).read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "treadle.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_check_config_on_the_example_exits_0() -> None:
    result = treadle("--check-config", "--config", EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "treadle: configuration OK\n"


def test_print_config_on_the_example_is_toml_naming_sources() -> None:
    result = treadle("--print-config", "--config", EXAMPLE, "--threads", "3",
                     TREADLE_KEEPALIVE="7.5")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    printed = tomllib.loads(result.stdout)
    assert printed["wsgi_app"] == "examples.hello:app"
    assert (printed["threads"], printed["keepalive"]) == (3, 7.5)
    assert printed["accesslog"] == "-"
    lines = result.stdout.splitlines()
    assert 'wsgi_app = "examples.hello:app"  # file examples/treadle.toml' in lines
    assert "threads = 3  # command line --threads" in lines
    assert "keepalive = 7.5  # env TREADLE_KEEPALIVE" in lines
    assert "backlog = 2048  # default" in lines


def test_print_config_on_the_pyproject_example() -> None:
    result = treadle("--print-config", "--config", PYPROJECT_EXAMPLE)
    assert result.returncode == 0, result.stderr
    printed = tomllib.loads(result.stdout)
    assert (printed["threads"], printed["bind"]) == (4, ["127.0.0.1:8001"])
    assert f"threads = 4  # file {PYPROJECT_EXAMPLE} [tool.treadle]" in result.stdout


def test_bad_value_in_a_file_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    path = bad_copy(tmp_path, "threads = 8", "threads = 0")
    message = one_error_line(treadle("--check-config", "--config", str(path)))
    assert message == f"file {path}, key 'threads': expected an integer >= 1, got 0"


def test_bad_bind_in_a_file_exits_2_before_printing(tmp_path: Path) -> None:
    path = bad_copy(tmp_path, 'bind = ["127.0.0.1:8000"]', 'bind = ["127.0.0.1:80000"]')
    result = treadle("--print-config", "--config", str(path))
    assert result.stdout == ""
    message = one_error_line(result)
    assert message.startswith(f"file {path}, key 'bind': expected HOST:PORT")
    assert "got '127.0.0.1:80000'" in message


def test_unknown_key_in_a_file_suggests_the_name(tmp_path: Path) -> None:
    path = bad_copy(tmp_path, "keepalive = 5", "keep_alive = 5")
    message = one_error_line(treadle("--check-config", "--config", str(path)))
    assert message == f"file {path}: unknown setting 'keep_alive' (did you mean 'keepalive'?)"


def test_bad_environment_value_exits_2_naming_the_variable() -> None:
    result = treadle("--check-config", "--config", EXAMPLE, TREADLE_LOGLEVEL="chatty")
    assert one_error_line(result) == (
        "env TREADLE_LOGLEVEL: expected one of debug, info, warning, error, critical, "
        "got 'chatty'"
    )


def test_bad_flag_exits_2_naming_the_flag() -> None:
    result = treadle("--check-config", "--config", EXAMPLE, "--forwarded-allow-ips", "10.1.2.3/8")
    assert one_error_line(result) == (
        "command line --forwarded-allow-ips: expected '*', an IP address or a CIDR network, "
        "got '10.1.2.3/8' (10.1.2.3/8 has host bits set)"
    )


def test_check_config_with_an_app_that_cannot_be_imported_exits_2() -> None:
    result = treadle("--check-config", "--config", EXAMPLE, "examples.no_such_module:app")
    message = one_error_line(result)
    assert message.startswith("wsgi_app (command line APP): ")
    assert "examples.no_such_module" in message


def test_check_config_with_a_missing_directory_exits_2() -> None:
    result = treadle("--check-config", "--config", EXAMPLE, "--pid", "no/such/dir/t.pid")
    message = one_error_line(result)
    assert message == (
        f"pidfile (command line --pid): directory {ROOT / 'no/such/dir'} does not exist"
    )


def test_no_app_exits_2() -> None:
    message = one_error_line(treadle("--threads", "2"))
    assert message.startswith("no application given")


def test_help_and_version_exit_0() -> None:
    result = treadle("--help")
    assert result.returncode == 0 and "Exit statuses:" in result.stdout
    assert "TREADLE_<NAME>" in result.stdout
    result = treadle("--version")
    assert result.returncode == 0 and result.stdout.startswith("treadle ")


def test_check_config_loads_the_tls_key_pair(tmp_path: Path) -> None:
    cert = trustme.CA().issue_cert("localhost")
    other = trustme.CA().issue_cert("localhost")
    certfile, keyfile, wrong_key = (tmp_path / n for n in ("cert.pem", "key.pem", "other.pem"))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    other.private_key_pem.write_to_path(str(wrong_key))

    good = treadle("--check-config", "--certfile", str(certfile), "--keyfile", str(keyfile))
    assert good.returncode == 0, good.stderr
    # Both files exist, so only loading the pair finds that the key is not the certificate's.
    bad = treadle("--check-config", "--certfile", str(certfile), "--keyfile", str(wrong_key))
    assert one_error_line(bad) == (
        f"keyfile (command line --keyfile): {wrong_key} holds a private key that does not match "
        f"the certificate in certfile {certfile}")
