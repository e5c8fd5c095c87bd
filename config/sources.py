# Loading: the four sources read in order (defaults < TOML file < environment < command
# line), each value run through its setting's validator, the winners frozen into a Config
# with the name of their source. Every error is one ConfigError line naming that source.
from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from . import gunicorn
from .cli import parse_command_line
from .combined import check_combinations
from .errors import ConfigError, Invalid
from .guess import closest
from .model import Config
from .pyconf import looks_like_python, python_config_error
from .schema import ENV_PREFIX, INTERNAL_VARIABLES, SETTINGS, Setting

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    # mypy checks this branch (python_version 3.10) where tomli may not be installed
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = ["load"]

_FILE_NAMES = tuple(setting.name for setting in SETTINGS if setting.in_file)
_ENV_NAMES = {setting.env: setting for setting in SETTINGS if setting.env}
_PATH_SETTINGS = ("config", "chdir", "pidfile", "accesslog", "errorlog", "certfile", "keyfile",
                  "ca_certs", "logconfig")


@dataclass
class _Layer:
    """Validated values from one source, with the source of each, and its problems (names
    that are not settings, values that are not valid): every one is reported in one run."""

    values: dict[str, object]
    sources: dict[str, str]
    problems: list[str] = field(default_factory=list)

    def put(self, setting: Setting, raw: object, source: str, where: str | None = None) -> None:
        try:
            self.values[setting.name] = _validated(setting, raw, where or source)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return
        self.sources[setting.name] = source


def _validated(setting: Setting, raw: object, where: str) -> object:
    try:
        return setting.validator(raw)
    except Invalid as exc:
        raise ConfigError(f"{where}: {exc.describe(setting.validator.expected, raw)}") from None


def _suggest(word: str, choices: Sequence[str], decoys: Sequence[str]) -> str:
    guess = closest(word, choices, decoys)
    return f" (did you mean {guess!r}?)" if guess else ""


# --- command line and environment ---------------------------------------------------------


def _command_line(argv: Sequence[str]) -> _Layer:
    given, unknown = parse_command_line(argv)
    layer = _Layer({}, {}, unknown)
    by_name = {setting.name: setting for setting in SETTINGS}
    for name, (flag, raw) in given.items():
        setting = by_name[name]
        # sources name the long flag (-b reads "--bind"); other long spellings stay as typed
        used = flag if flag.startswith("--") or setting.positional else setting.flag
        layer.put(setting, raw, f"command line {used}")
    return layer


def _environment(environ: Mapping[str, str]) -> _Layer:
    layer = _Layer({}, {})
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX) or variable in INTERNAL_VARIABLES:
            continue
        setting = _ENV_NAMES.get(variable)
        if setting is None:
            layer.problems.append(_unknown_variable(variable))
            continue
        layer.put(setting, environ[variable], f"env {variable}")
    return layer


def _unknown_variable(variable: str) -> str:
    entry = gunicorn.by_name(variable.removeprefix(ENV_PREFIX))
    if entry is not None:
        return f"env {variable}: {gunicorn.explain(entry)}"
    hint = _suggest(variable, sorted(_ENV_NAMES), _GUNICORN_ENV)
    return f"env {variable}: not a treadle setting{hint}"


_GUNICORN_ENV = [ENV_PREFIX + entry.name.upper() for entry in gunicorn.GUNICORN_ONLY]
_GUNICORN_KEYS = [entry.name for entry in gunicorn.GUNICORN_ONLY]


# --- the TOML file --------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileChoice:
    """Which settings file to read: its absolute path, how to name it, who chose it."""

    path: Path | None
    display: str
    chosen_by: str  # the source of the `config` setting


def _choose_file(cli: _Layer, env: _Layer, cwd: Path) -> _FileChoice:
    for layer in (cli, env):
        if "config" in layer.values:
            given = layer.values["config"]
            if given is None:  # an explicit empty value: no file, no search
                return _FileChoice(None, "", layer.sources["config"])
            return _FileChoice(cwd / str(given), str(given), layer.sources["config"])
    for name in ("treadle.toml", "pyproject.toml"):
        candidate = cwd / name
        if candidate.is_file():
            return _FileChoice(candidate, name, "default")
    return _FileChoice(None, "", "default")


def _read_text(choice: _FileChoice) -> str:
    assert choice.path is not None
    try:
        return choice.path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{choice.chosen_by}: no such file: {choice.display}") from None
    except IsADirectoryError:
        raise ConfigError(f"{choice.chosen_by}: {choice.display} is a directory") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{choice.chosen_by}: cannot read {choice.display}: {reason}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(f"file {choice.display}: not UTF-8 text (line {line})") from None


def _read_toml(choice: _FileChoice) -> dict[str, Any]:
    text = _read_text(choice)
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        assert choice.path is not None
        if looks_like_python(choice.path.name, text):
            raise python_config_error(f"file {choice.display}", text) from None
        message = " ".join(str(exc).split())
        if "line " not in message:  # tomllib says "(at end of document)" without a line
            message += f" (line {text.count(chr(10)) + 1})"
        raise ConfigError(f"file {choice.display}: invalid TOML: {message}") from None
    return document


def _settings_table(choice: _FileChoice, document: dict[str, Any]) -> dict[str, Any] | None:
    """The table holding the settings: the document, or [tool.treadle] of a pyproject.toml."""
    if choice.path is None or choice.path.name != "pyproject.toml":
        return document
    tool = document.get("tool")
    table = tool.get("treadle") if isinstance(tool, dict) else None
    if table is None:
        if choice.chosen_by == "default":
            return None  # a pyproject.toml without treadle settings is simply not ours
        raise ConfigError(f"file {choice.display}: no [tool.treadle] table")
    if not isinstance(table, dict):
        raise ConfigError(f"file {choice.display}: tool.treadle must be a table")
    return table


def _unknown_key(label: str, key: str, value: object) -> str:
    if key in ("check_config", "print_config"):
        return f"{label}: '{key}' is an action for the command line only"
    if key == "config":
        return f"{label}: 'config' goes on the command line or in TREADLE_CONFIG"
    if isinstance(value, dict):  # no setting takes a table: a misplaced section
        return f"{label}: unknown table [{key}] (settings go at the top level)"
    entry = gunicorn.by_name(key)
    if entry is not None:
        return f"{label}, key {key!r}: {gunicorn.explain(entry)}"
    hint = _suggest(key, _FILE_NAMES, _GUNICORN_KEYS)
    return f"{label}: unknown setting {key!r}{hint}"


def _file(choice: _FileChoice) -> tuple[_Layer, bool]:
    """The file's settings, and whether a settings file was used at all."""
    layer = _Layer({}, {})
    if choice.path is None:
        return layer, False
    table = _settings_table(choice, _read_toml(choice))
    if table is None:
        return layer, False
    label = f"file {choice.display}"
    if choice.path.name == "pyproject.toml":
        label += " [tool.treadle]"
    by_name = {setting.name: setting for setting in SETTINGS if setting.in_file}
    for key, raw in table.items():
        setting = by_name.get(key)
        if setting is None:
            layer.problems.append(_unknown_key(label, key, raw))
            continue
        layer.put(setting, raw, label, f"{label}, key {key!r}")
    return layer, True


# --- putting it together --------------------------------------------------------------------


def _absolute(value: str, cwd: Path) -> str:
    return os.path.normpath(os.path.join(cwd, value))


def _resolve_paths(values: dict[str, object], cwd: Path) -> None:
    """Relative paths are taken from the starting directory, once, so chdir cannot move them."""
    for name in _PATH_SETTINGS:
        value = values[name]
        if isinstance(value, str) and value != "-":
            values[name] = _absolute(value, cwd)
    bind = values["bind"]
    assert isinstance(bind, tuple)
    values["bind"] = tuple(
        "unix:" + _absolute(address[5:], cwd) if address.startswith("unix:") else address
        for address in bind
    )


def load(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Config:
    """Read defaults, the TOML file, the environment and ``argv`` into a frozen Config.

    ``argv`` excludes the program name (default ``sys.argv[1:]``), ``environ`` defaults to
    ``os.environ`` and ``cwd`` (where the default files are looked for and relative paths
    start) to the current directory. Raises ConfigError (one line naming the source);
    --help and --version print and raise SystemExit(0).
    """
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    start = Path(os.getcwd() if cwd is None else cwd)
    cli = _command_line(argv)
    env = _environment(environ)
    choice = _choose_file(cli, env, start)
    file, used = _file(choice)
    problems = cli.problems + env.problems + file.problems
    if problems:
        raise ConfigError(*problems)
    values: dict[str, object] = {setting.name: setting.default for setting in SETTINGS}
    sources = dict.fromkeys(values, "default")
    for layer in (file, env, cli):
        values.update(layer.values)
        sources.update(layer.sources)
    values["config"] = str(choice.path) if used else None
    sources["config"] = choice.chosen_by
    _resolve_paths(values, start)
    check_combinations(values, sources)
    return Config(**values, sources=MappingProxyType(sources))  # type: ignore[arg-type]
