"""gunicorn's settings that treadle lacks (config/gunicorn.py), the did-you-mean rule
(config/guess.py) and the Python-config-file message (config/pyconf.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from treadle.config import ConfigError, load
from treadle.config import gunicorn as g
from treadle.config.guess import closest
from treadle.config.reference import REGENERATE, with_gunicorn_table
from treadle.config.schema import SETTINGS

from tests.conftest import IN_CI

# the checkout's docs, also when treadle is installed from a wheel (CI's per-Python venvs)
GUNICORN_DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "gunicorn.md"
SETTING_NAMES = {setting.name for setting in SETTINGS}
SETTING_FLAGS = {flag for s in SETTINGS for flag in (*s.flags, *s.negative_flags)}


def installed_gunicorn_settings() -> list[object]:
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:
        message = "this test needs gunicorn (the test extra installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return list(KNOWN_SETTINGS)


# --- the table ------------------------------------------------------------------------------


def test_no_entry_names_a_treadle_setting_or_flag() -> None:
    stale = [e.name for e in g.GUNICORN_ONLY if e.name in SETTING_NAMES]
    assert not stale, f"treadle has these settings now, remove them from config/gunicorn.py: " \
        f"{stale} (and run `{REGENERATE}`)"
    stale_flags = [f for e in g.GUNICORN_ONLY for f in e.flags if f in SETTING_FLAGS]
    assert not stale_flags, f"treadle flags, not gunicorn-only ones: {stale_flags}"
    names = [e.name for e in g.GUNICORN_ONLY]
    assert len(names) == len(set(names))


def test_schema_settings_always_win(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in SETTINGS:
        assert g.by_name(setting.name) is None
        assert all(g.by_flag(flag) is None for flag in setting.flags)
    # an entry that a new treadle setting overrides is never consulted, flags included
    clash = g.GunicornOnly("threads", "stale advice", ("--threads", "-T"))
    monkeypatch.setattr(g, "GUNICORN_ONLY", (*g.GUNICORN_ONLY, clash))
    assert clash not in list(g._live())
    clash_flag = g.GunicornOnly("new_name", "advice", ("--threads", "--new-name"))
    monkeypatch.setattr(g, "GUNICORN_ONLY", (clash_flag,))
    assert g.flags_to_recognise() == [(("--new-name",), clash_flag)]


def test_the_table_covers_every_gunicorn_setting_with_its_flags() -> None:
    by_name = {e.name: e for e in g.GUNICORN_ONLY}
    for known in installed_gunicorn_settings():
        name, flags = known.name, tuple(known.cli or ())  # type: ignore[attr-defined]
        if name in SETTING_NAMES:
            missing = [flag for flag in flags if flag not in SETTING_FLAGS]
            assert not missing, f"gunicorn's {name} flags {missing} are not treadle's"
            continue
        assert name in by_name, f"gunicorn's {name} is neither a treadle setting nor in the table"
        entry = by_name[name]
        assert entry.flags == flags, name
        action, nargs = known.action, getattr(known, "nargs", None)  # type: ignore[attr-defined]
        expected = 0 if action in ("store_true", "store_const") else nargs
        assert entry.nargs == expected, name
    gunicorn_names = {known.name for known in installed_gunicorn_settings()}  # type: ignore[attr-defined]
    assert not set(by_name) - gunicorn_names, "entries that gunicorn does not have"


def test_docs_gunicorn_md_table_is_current() -> None:
    text = GUNICORN_DOCS_PATH.read_text(encoding="utf-8")
    assert text == with_gunicorn_table(text), (
        f"docs/gunicorn.md's table is stale: run `{REGENERATE}` from the repository root"
    )
    for entry in g.GUNICORN_ONLY:
        assert f"`{entry.name}`" in text


# --- messages through load() -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "flag", "name"),
    [
        (["--worker-class", "gevent"], "--worker-class", "worker_class"),
        (["-k", "gevent"], "-k", "worker_class"),
        (["-kgevent"], "-k", "worker_class"),
        (["--worker-class=gevent"], "--worker-class", "worker_class"),
        (["-n", "web"], "-n", "proc_name"),
        (["--reload-engine", "poll"], "--reload-engine", "reload_engine"),
        (["--spew"], "--spew", "spew"),
        (["--daemon"], "--daemon", "daemon"),
        (["--ssl-version", "TLSv1_2"], "--ssl-version", "ssl_version"),
        (["--uwsgi-allow-from", "10.0.0.1"], "--uwsgi-allow-from", "uwsgi_allow_ips"),
    ],
)
def test_gunicorn_flags_get_their_advice(tmp_path: Path, argv: list[str], flag: str,
                                         name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load([*argv, "examples.hello:app"], {}, tmp_path)
    entry = g.by_name(name)
    assert entry is not None
    assert caught.value.problems == (f"command line {flag}: {g.explain(entry)}",)
    assert "did you mean" not in str(caught.value)
    assert "docs/gunicorn.md" in str(caught.value)


def test_every_bad_flag_variable_and_key_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "treadle.toml").write_text("daemon = 4\nthreds = 2\nthreads = 0\nzzz = 1\n")
    with pytest.raises(ConfigError) as caught:
        load(["-k", "4", "--frobnicate", "--thread", "2", "--keep-alive", "x", "app:app"],
             {"TREADLE_SPEW": "3", "TREADLE_THREDS": "2", "TREADLE_BACKLOG": "lots"}, tmp_path)
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "command line -k", "command line", "command line", "command line --keep-alive",
        "env TREADLE_BACKLOG", "env TREADLE_SPEW", "env TREADLE_THREDS",
        "file treadle.toml, key 'daemon'", "file treadle.toml",
        "file treadle.toml, key 'threads'", "file treadle.toml"]
    assert "command line: unknown option --frobnicate (see treadle --help)" in problems
    assert "command line: unknown option --thread (did you mean --threads?)" in problems
    assert "env TREADLE_THREDS: not a treadle setting (did you mean 'TREADLE_THREADS'?)" \
        in problems
    assert "file treadle.toml: unknown setting 'threds' (did you mean 'threads'?)" in problems
    assert "file treadle.toml: unknown setting 'zzz'" in problems


def test_an_unknown_options_value_is_not_also_called_a_bad_app(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(["--frobnicate", "3", "app:app"], {}, tmp_path)
    assert caught.value.problems == ("command line: unknown option --frobnicate "
                                     "(see treadle --help)",)


@pytest.mark.parametrize("key", ["daemon", "Daemon", "worker-class", "on_starting"])
def test_gunicorn_keys_in_a_file_get_their_advice(tmp_path: Path, key: str) -> None:
    (tmp_path / "treadle.toml").write_text(f'"{key}" = 1\n')
    with pytest.raises(ConfigError) as caught:
        load([], {}, tmp_path)
    entry = g.by_name(key)
    assert entry is not None
    assert str(caught.value) == f"file treadle.toml, key {key!r}: {g.explain(entry)}"


# --- did you mean ---------------------------------------------------------------------------

FLAGS = sorted(SETTING_FLAGS)
DECOYS = [flag for flags, _ in g.flags_to_recognise() for flag in flags]


@pytest.mark.parametrize(
    ("typed", "guess"),
    [
        ("--thread", "--threads"),
        ("--keepalive", "--keep-alive"),
        ("--thr", "--threads"),
        ("--graceful-timout", "--graceful-timeout"),
        ("--log_level", "--log-level"),
        ("--acess-logfile", "--access-logfile"),
        # a gunicorn user's words are never steered to a different setting
        ("--worker-clas", None),
        ("--reload-engin", None),
        ("--daemon", None),
        ("--log-syslog", None),
        # far from anything, or too short to be a slip
        ("--frobnicate", None),
        ("--time", "--timeout"),  # an abbreviation of exactly one flag
        ("-x", None),
        ("--bindaddress", None),
    ],
)
def test_guesses_are_only_plain_slips(typed: str, guess: str | None) -> None:
    assert closest(typed, FLAGS, DECOYS) == guess


def test_difflib_close_but_wrong_names_get_no_guess() -> None:
    # difflib's ratio >= 0.6 offered each of these; none is what the user meant
    assert closest("timeout", ["body_timeout", "header_timeout"]) is None
    assert closest("workers", ["worker_connections"]) is None
    assert closest("worker_class", ["worker_connections"]) is None
    assert closest("threads_per_worker", ["threads"]) is None


# --- a Python settings file ------------------------------------------------------------------


def test_a_python_config_file_is_translated_not_run(tmp_path: Path) -> None:
    (tmp_path / "gunicorn.conf.py").write_text(
        "import os\nbind = '0.0.0.0:8000'\ndaemon = True\nthreads = int(os.environ['T'])\n"
        "keepalive = 5\nraw_env = ['A=1']\nreuse_port = True\nloglevel = 'chatty'\n"
        "open('ran', 'w')\ndef post_fork(server, worker):\n    pass\n")
    with pytest.raises(ConfigError) as caught:
        load(["-c", "gunicorn.conf.py"], {}, tmp_path)
    assert caught.value.problems == (
        "file gunicorn.conf.py: treadle reads TOML, not a Python config file like gunicorn's "
        "(see docs/gunicorn.md); its settings in TOML would be:",)
    daemon, post_fork = g.by_name("daemon"), g.by_name("post_fork")
    assert daemon is not None and post_fork is not None
    assert caught.value.details == (
        'bind = "0.0.0.0:8000"\n'
        f"# daemon: not in treadle: {daemon.advice}\n"
        "# threads = int(os.environ['T']): computed in Python; compute it where treadle is "
        "started and set TREADLE_THREADS\n"
        "keepalive = 5\n"
        'raw_env = ["A=1"]\n'
        "reuse_port = true\n"
        "# loglevel = 'chatty': expected one of debug, info, warning, error, critical, "
        "got 'chatty'\n"
        f"# post_fork: not in treadle: {post_fork.advice}\n"
    )
    assert not (tmp_path / "ran").exists()


def test_a_file_that_is_not_toml_but_python_gets_the_toml_message(tmp_path: Path) -> None:
    (tmp_path / "settings.conf").write_text("reuse_port = True\n")
    with pytest.raises(ConfigError) as caught:
        load(["-c", "settings.conf"], {}, tmp_path)
    assert "treadle reads TOML" in str(caught.value)
    assert caught.value.details == "reuse_port = true\n"
    (tmp_path / "settings.conf").write_text("reuse_port = [\n")  # neither: the TOML error
    with pytest.raises(ConfigError, match="invalid TOML"):
        load(["-c", "settings.conf"], {}, tmp_path)
    (tmp_path / "broken.py").write_text("def (:\n")  # named .py: the TOML message, no list
    with pytest.raises(ConfigError) as caught:
        load(["-c", "broken.py"], {}, tmp_path)
    assert "treadle reads TOML" in str(caught.value) and caught.value.details == ""
