"""Loading: the four sources and their precedence, file discovery, and one-line errors."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
from treadle.config import SETTINGS, Config, ConfigError, load, to_toml

# setting: (TOML text, its value) (env text, its value) (flags, their value)
LAYERS = {
    "threads": (("threads = 2", 2), ("3", 3), (["--threads", "4"], 4)),
    "bind": (
        ('bind = ["127.0.0.1:1"]', ("127.0.0.1:1",)),
        ("127.0.0.1:2,[::1]:2", ("127.0.0.1:2", "[::1]:2")),
        (["-b", "127.0.0.1:3", "--bind", "unix:/tmp/t.sock"], ("127.0.0.1:3", "unix:/tmp/t.sock")),
    ),
    "reuse_port": (("reuse_port = true", True), ("no", False), (["--reuse-port"], True)),
    "keepalive": (("keepalive = 1", 1.0), ("2.5", 2.5), (["--keep-alive", "0"], 0.0)),
    "forwarded_allow_ips": (
        ('forwarded_allow_ips = "10.0.0.0/8"', ("10.0.0.0/8",)),
        ("*", ("*",)),
        (["--forwarded-allow-ips", "192.168.0.1, ::1"], ("192.168.0.1", "::1")),
    ),
    "loglevel": (
        ('loglevel = "debug"', "debug"), ("ERROR", "error"), (["--log-level", "warning"], "warning")
    ),
    "umask": (("umask = 0o077", 0o77), ("022", 0o22), (["-m", "0"], 0)),
}

CLI_SOURCE = {
    "threads": "--threads", "bind": "--bind", "reuse_port": "--reuse-port",
    "keepalive": "--keep-alive", "forwarded_allow_ips": "--forwarded-allow-ips",
    "loglevel": "--log-level", "umask": "--umask",
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize(("in_file", "in_env", "on_cli"), list(itertools.product((0, 1), repeat=3)))
def test_precedence_defaults_file_env_command_line(
    tmp_path: Path, name: str, in_file: int, in_env: int, on_cli: int
) -> None:
    (file_text, file_value), (env_text, env_value), (flags, cli_value) = LAYERS[name]
    if in_file:
        (tmp_path / "treadle.toml").write_text(file_text + "\n")
    environ = {f"TREADLE_{name.upper()}": env_text} if in_env else {}
    cfg = load(flags if on_cli else [], environ, tmp_path)
    default = next(s.default for s in SETTINGS if s.name == name)
    expected = [
        (on_cli, cli_value, f"command line {CLI_SOURCE[name]}"),
        (in_env, env_value, f"env TREADLE_{name.upper()}"),
        (in_file, file_value, "file treadle.toml"),
        (True, default, "default"),
    ]
    value, source = next((value, source) for present, value, source in expected if present)
    assert getattr(cfg, name) == value
    assert cfg.sources[name] == source


def test_all_sources_at_once_each_setting_keeps_its_own_winner(tmp_path: Path) -> None:
    (tmp_path / "treadle.toml").write_text("threads = 2\nbacklog = 10\nloglevel = 'debug'\n")
    cfg = load(["--backlog", "30"], {"TREADLE_LOGLEVEL": "error"}, tmp_path)
    assert (cfg.threads, cfg.backlog, cfg.loglevel, cfg.keepalive) == (2, 30, "error", 5.0)
    assert cfg.sources["threads"] == "file treadle.toml"
    assert cfg.sources["backlog"] == "command line --backlog"
    assert cfg.sources["loglevel"] == "env TREADLE_LOGLEVEL"
    assert cfg.sources["keepalive"] == "default"


# --- which file --------------------------------------------------------------------------


def test_no_file_anywhere_gives_defaults(tmp_path: Path) -> None:
    cfg = load([], {}, tmp_path)
    assert cfg == Config()
    assert cfg.config is None and cfg.sources["config"] == "default"


def test_treadle_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "treadle.toml").write_text("threads = 2\n")
    (tmp_path / "pyproject.toml").write_text("[tool.treadle]\nthreads = 3\n")
    cfg = load([], {}, tmp_path)
    assert cfg.threads == 2 and cfg.config == str(tmp_path / "treadle.toml")


def test_pyproject_tool_treadle_is_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n[tool.treadle]\nthreads = 3\n")
    cfg = load([], {}, tmp_path)
    assert cfg.threads == 3
    assert cfg.sources["threads"] == "file pyproject.toml [tool.treadle]"
    assert cfg.config == str(tmp_path / "pyproject.toml")


def test_pyproject_without_treadle_table_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.other]\nthreads = 'x'\n")
    cfg = load([], {}, tmp_path)
    assert cfg.config is None and cfg.threads == 8


def test_explicit_pyproject_without_treadle_table_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(ConfigError, match=r"^file pyproject.toml: no \[tool.treadle\] table$"):
        load(["--config", "pyproject.toml"], {}, tmp_path)


def test_config_flag_beats_env_beats_discovery(tmp_path: Path) -> None:
    for name, threads in (("treadle.toml", 1), ("env.toml", 2), ("flag.toml", 3)):
        (tmp_path / name).write_text(f"threads = {threads}\n")
    env = {"TREADLE_CONFIG": "env.toml"}
    assert load([], {}, tmp_path).threads == 1
    by_env = load([], env, tmp_path)
    assert (by_env.threads, by_env.sources["threads"]) == (2, "file env.toml")
    assert by_env.sources["config"] == "env TREADLE_CONFIG"
    by_flag = load(["-c", "flag.toml"], env, tmp_path)
    assert (by_flag.threads, by_flag.sources["config"]) == (3, "command line --config")


def test_empty_config_turns_the_search_off(tmp_path: Path) -> None:
    (tmp_path / "treadle.toml").write_text("threads = 2\n")
    assert load(["--config", ""], {}, tmp_path).threads == 8
    assert load([], {"TREADLE_CONFIG": ""}, tmp_path).config is None


def test_missing_config_file_names_who_asked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^command line --config: no such file: nope.toml$"):
        load(["--config", "nope.toml"], {}, tmp_path)
    with pytest.raises(ConfigError, match=r"^env TREADLE_CONFIG: no such file: gone.toml$"):
        load([], {"TREADLE_CONFIG": "gone.toml"}, tmp_path)
    with pytest.raises(ConfigError, match="is a directory"):
        load(["--config", "."], {}, tmp_path)


# --- file errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [("threads = 2\nbind = [\n", 3), ("threads = \n", 1), ("a = 1\nb = 2\nthreads = = 4\n", 3)],
)
def test_toml_syntax_error_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    (tmp_path / "treadle.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load([], {}, tmp_path)
    message = str(caught.value)
    assert message.startswith("file treadle.toml: invalid TOML: ")
    assert f"line {line}" in message and "\n" not in message


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "treadle.toml").write_bytes(b"root_path = '/\xff'\n")
    with pytest.raises(ConfigError, match="^file treadle.toml: "):
        load([], {}, tmp_path)


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("thread", "threads"),
        ("keep_alive", "keepalive"),
        ("worker-connections", "worker_connections"),
        ("limit_request_field-size", "limit_request_field_size"),
        ("forwarded_allow_ip", "forwarded_allow_ips"),
        ("access_log", "accesslog"),
        ("log_level", "loglevel"),
        ("Bind", "bind"),
    ],
)
def test_unknown_key_suggests_the_closest_name(tmp_path: Path, key: str, suggestion: str) -> None:
    (tmp_path / "treadle.toml").write_text(f'"{key}" = 1\n')
    with pytest.raises(ConfigError) as caught:
        load([], {}, tmp_path)
    assert str(caught.value) == (
        f"file treadle.toml: unknown setting {key!r} (did you mean {suggestion!r}?)"
    )


def test_unknown_key_without_a_close_name(tmp_path: Path) -> None:
    (tmp_path / "treadle.toml").write_text("zzz = 1\n")
    with pytest.raises(ConfigError, match=r"^file treadle.toml: unknown setting 'zzz'$"):
        load([], {}, tmp_path)


def test_tables_are_not_sections(tmp_path: Path) -> None:
    (tmp_path / "treadle.toml").write_text("[server]\nthreads = 2\n")
    with pytest.raises(ConfigError, match="settings go at the top level"):
        load([], {}, tmp_path)


@pytest.mark.parametrize("key", ["config", "check_config", "print_config"])
def test_command_line_only_settings_are_refused_in_files(tmp_path: Path, key: str) -> None:
    (tmp_path / "treadle.toml").write_text(f"{key} = true\n")
    with pytest.raises(ConfigError, match=f"^file treadle.toml: '{key}' "):
        load([], {}, tmp_path)


def test_unknown_key_in_pyproject_names_the_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.treadle]\nthreds = 2\n")
    with pytest.raises(ConfigError) as caught:
        load([], {}, tmp_path)
    assert str(caught.value) == (
        "file pyproject.toml [tool.treadle]: unknown setting 'threds' (did you mean 'threads'?)"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("threads = 0", "key 'threads': expected an integer >= 1, got 0"),
        ("threads = 4.5", "key 'threads': expected an integer >= 1, got 4.5"),
        ("reuse_port = 1", "key 'reuse_port': expected a boolean (true/false, 1/0, yes/no), got 1"),
        ('bind = ["::1:80"]', "key 'bind': expected HOST:PORT, [IPv6]:PORT, :PORT, unix:PATH"),
        ("keepalive = -1.5", "key 'keepalive': expected a number of seconds >= 0, got -1.5"),
        ('loglevel = "loud"', "key 'loglevel': expected one of debug, info, warning"),
    ],
)
def test_bad_value_in_file_names_file_key_type_and_value(
    tmp_path: Path, line: str, message: str
) -> None:
    (tmp_path / "treadle.toml").write_text(line + "\n")
    with pytest.raises(ConfigError) as caught:
        load([], {}, tmp_path)
    assert str(caught.value).startswith("file treadle.toml, " + message)


# --- environment ---------------------------------------------------------------------------


def test_environment_values_are_parsed_by_the_validators(tmp_path: Path) -> None:
    environ = {
        "TREADLE_BIND": "127.0.0.1:1, unix:s.sock",
        "TREADLE_RAW_ENV": "A=1,B=2",
        "TREADLE_SERVER_HEADER": "0",
        "TREADLE_REUSE_PORT": "YES",
        "TREADLE_GRACEFUL_TIMEOUT": "0.5",
        "TREADLE_ACCESSLOG": "-",
        "TREADLE_WSGI_APP": "examples.hello:app",
        "TREADLE_USER": "1000",
        "PATH": "/bin",
        "TREADLEX": "ignored",
    }
    cfg = load([], environ, tmp_path)
    assert cfg.bind == ("127.0.0.1:1", f"unix:{tmp_path / 's.sock'}")
    assert cfg.raw_env == ("A=1", "B=2")
    assert (cfg.server_header, cfg.reuse_port) == (False, True)
    assert (cfg.graceful_timeout, cfg.accesslog, cfg.user) == (0.5, "-", "1000")
    assert cfg.wsgi_app == "examples.hello:app"
    assert cfg.sources["wsgi_app"] == "env TREADLE_WSGI_APP"


def test_empty_environment_value_unsets_an_optional_setting(tmp_path: Path) -> None:
    (tmp_path / "treadle.toml").write_text('accesslog = "-"\npidfile = "t.pid"\n')
    cfg = load([], {"TREADLE_ACCESSLOG": "", "TREADLE_RAW_ENV": ""}, tmp_path)
    assert cfg.accesslog is None and cfg.sources["accesslog"] == "env TREADLE_ACCESSLOG"
    assert cfg.raw_env == ()
    assert cfg.pidfile == str(tmp_path / "t.pid")


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load([], {"TREADLE_BACKLOG": "lots"}, tmp_path)
    assert str(caught.value) == (
        "env TREADLE_BACKLOG: expected an integer from 1 to 65535, got 'lots'"
    )


def test_unknown_environment_variable_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load([], {"TREADLE_THREDS": "2"}, tmp_path)
    assert str(caught.value) == (
        "env TREADLE_THREDS: not a treadle setting (did you mean 'TREADLE_THREADS'?)"
    )


def test_actions_have_no_environment_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^env TREADLE_CHECK_CONFIG: not a treadle setting"):
        load([], {"TREADLE_CHECK_CONFIG": "1"}, tmp_path)


# --- command line --------------------------------------------------------------------------


def test_flags_and_their_sources(tmp_path: Path) -> None:
    cfg = load(
        ["-b", ":0", "--log-file", "err.log", "--limit-request-field_size", "100",
         "--no-server-header", "-e", "A=1", "--env", "B=2", "mod:app"],
        {}, tmp_path,
    )
    assert cfg.bind == (":0",) and cfg.sources["bind"] == "command line --bind"
    assert cfg.errorlog == str(tmp_path / "err.log")
    assert cfg.sources["errorlog"] == "command line --log-file"
    assert cfg.limit_request_field_size == 100
    assert cfg.sources["limit_request_field_size"] == "command line --limit-request-field_size"
    assert cfg.server_header is False
    assert cfg.sources["server_header"] == "command line --no-server-header"
    assert cfg.raw_env == ("A=1", "B=2")
    assert (cfg.wsgi_app, cfg.sources["wsgi_app"]) == ("mod:app", "command line APP")


def test_negative_switch_overrides_lower_sources(tmp_path: Path) -> None:
    (tmp_path / "treadle.toml").write_text("reuse_port = true\n")
    assert load([], {}, tmp_path).reuse_port is True
    assert load(["--no-reuse-port"], {}, tmp_path).reuse_port is False
    assert load(["--no-reuse-port", "--reuse-port"], {}, tmp_path).reuse_port is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--threads", "0"], "command line --threads: expected an integer >= 1, got '0'"),
        (["--thread", "2"], "command line: unknown option --thread (did you mean --threads?)"),
        (["--keepalive=3"], "command line: unknown option --keepalive (did you mean --keep-al"),
        (["--frobnicate"], "command line: unknown option --frobnicate (see treadle --help)"),
        (["a:b", "c:d"], "command line: unexpected argument 'c:d' (only one APP is given)"),
        (["--threads"], "command line: argument --threads: expected one argument"),
        (["--thr", "2"], "command line: unknown option --thr (did you mean --threads?)"),
        (["-b", "host:port"], "command line --bind: expected HOST:PORT"),
        (["bad app"], "command line APP: expected module:attr"),
    ],
)
def test_command_line_errors_are_one_line(tmp_path: Path, argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(argv, {}, tmp_path)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_help_is_generated_from_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        load(["--help"], {}, tmp_path)
    assert caught.value.code == 0
    text = capsys.readouterr().out
    for setting in SETTINGS:
        for flag in setting.flags + setting.negative_flags:
            assert flag in text
        if setting.env:
            assert setting.env in text
    for heading in ("Server socket:", "Timeouts:", "Logging:", "Exit statuses:"):
        assert heading in text
    assert "TREADLE_<NAME>" in text and "4  a listening socket cannot be opened" in text
    assert "%(h)s" in text  # argparse's own %-formatting did not eat the log format


def test_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        load(["--version"], {}, tmp_path)
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("treadle ") and len(out.split()) == 2


# --- the result ------------------------------------------------------------------------------


def test_relative_paths_are_resolved_against_the_starting_directory(tmp_path: Path) -> None:
    (tmp_path / "treadle.toml").write_text(
        'pidfile = "run/t.pid"\naccesslog = "-"\nerrorlog = "logs/../e.log"\n'
        'chdir = "app"\nbind = ["unix:t.sock", "unix:/abs.sock", ":0"]\n'
    )
    cfg = load([], {}, tmp_path)
    assert cfg.pidfile == str(tmp_path / "run" / "t.pid")
    assert (cfg.accesslog, cfg.errorlog) == ("-", str(tmp_path / "e.log"))
    assert cfg.chdir == str(tmp_path / "app")
    assert cfg.bind == (f"unix:{tmp_path / 't.sock'}", "unix:/abs.sock", ":0")


def test_config_is_frozen_and_matches_the_schema() -> None:
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.threads = 2  # type: ignore[misc]
    fields = {f.name: f.default for f in dataclasses.fields(Config) if f.name != "sources"}
    assert fields == {setting.name: setting.default for setting in SETTINGS}
    assert list(fields) == [setting.name for setting in SETTINGS]
    assert dict(cfg.sources) == dict.fromkeys(fields, "default")
    with pytest.raises(TypeError):
        cfg.sources["threads"] = "x"  # type: ignore[index]


def test_print_config_output_loads_back_to_the_same_settings(tmp_path: Path) -> None:
    argv = [
        "-b", "127.0.0.1:0", "-b", "[::1]:9000", "--threads", "3", "--keep-alive", "1.5",
        "--no-server-header", "-m", "027", "-e", 'Q="quoted"\\x', "--access-logformat",
        '%(h)s "%(r)s" é', "--root-path", "/app", "--access-logfile", "-", "mod:make(1)",
        "--log-config-dict", '{"loggers": {"treadle.access": {"handlers": [], "level": 20,'
        ' "propagate": true}}, "x \\"q\\"": [1.5, "é"]}',
    ]
    cfg = load(argv, {}, tmp_path)
    text = to_toml(cfg)
    assert "threads = 3  # command line --threads" in text
    assert "umask = 0o027  # command line --umask" in text
    assert "# pidfile is unset  # default" in text
    (tmp_path / "again.toml").write_text(text)
    again = load(["--config", "again.toml"], {}, tmp_path)
    for setting in SETTINGS:
        if setting.in_file:
            assert getattr(again, setting.name) == getattr(cfg, setting.name), setting.name
    assert again.sources["threads"] == "file again.toml"
