# docs/settings.md, generated from the schema so the reference cannot drift from the code, and
# docs/gunicorn.md's table of gunicorn settings treadle lacks, generated from config/gunicorn.py.
# `python -m treadle.config.docs` rewrites both; unit tests check the committed files are current.
from __future__ import annotations

from pathlib import Path

from .cli import EXIT_STATUSES
from .gunicorn import GUNICORN_ONLY, GunicornOnly
from .schema import ENV_PREFIX, SECTIONS, SETTINGS, Setting, default_display

__all__ = ["DOCS_PATH", "GUNICORN_DOCS_PATH", "REGENERATE", "settings_markdown",
           "with_gunicorn_table"]

DOCS_PATH = Path(__file__).parent.parent / "docs" / "settings.md"  # in a checkout
GUNICORN_DOCS_PATH = DOCS_PATH.with_name("gunicorn.md")
REGENERATE = "python -m treadle.config.docs"

_INTRO = f"""\
# Settings

<!-- Generated from config/schema.py by `{REGENERATE}`; do not edit by hand. -->

Every setting can come from four places; a later one wins:

1. its default;
2. a TOML file: `--config PATH` (or `{ENV_PREFIX}CONFIG`); without either, `treadle.toml` in
   the working directory if present, else the `[tool.treadle]` table of `pyproject.toml` there;
3. the environment: `{ENV_PREFIX}<NAME>`, the setting's name in capitals (`{ENV_PREFIX}THREADS=16`);
   lists are comma-separated, booleans `true`/`false`, `1`/`0` or `yes`/`no`, and an empty
   value unsets an optional setting;
4. the command line.

A list given by a later source replaces the earlier list; it does not add to it.

Names, units and flags follow gunicorn, so a gunicorn setting carries over by name; where a
default or a rule differs, the entry says why. Relative paths are resolved against the
directory treadle is started in, when the settings are loaded (`chdir` does not move them).
`treadle --print-config` shows the effective settings and where each came from;
`treadle --check-config` also checks the files they name and that the application imports.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def _command_line(setting: Setting) -> str:
    if setting.positional:
        return f"positional `{setting.positional}`"
    meta = "" if setting.switch else f" {setting.metavar}"
    spelled = [_code(flag + meta) for flag in setting.flags]
    spelled += [_code(flag) for flag in setting.negative_flags]
    return ", ".join(spelled)


def _entry(setting: Setting) -> list[str]:
    rows = [
        ("Type", setting.validator.expected),
        ("Default", default_display(setting)),
        ("Command line", _command_line(setting)),
        ("Environment", _code(setting.env) if setting.env else "none (command line only)"),
        ("TOML file", _code(setting.name) if setting.in_file else "no"),
    ]
    lines = [f"### `{setting.name}`", "", setting.help, "", "| | |", "|---|---|"]
    lines += [f"| {label} | {_cell(value)} |" for label, value in rows]
    if setting.details:
        lines += ["", setting.details]
    if setting.gunicorn:
        lines += ["", f"*gunicorn:* {setting.gunicorn}"]
    return lines + [""]


def settings_markdown() -> str:
    """The content of docs/settings.md."""
    lines = [_INTRO]
    for section in SECTIONS:
        lines += [f"## {section}", ""]
        for setting in SETTINGS:
            if setting.section == section:
                lines += _entry(setting)
    lines += ["## Exit statuses", "", "| Status | Meaning |", "|---|---|"]
    lines += [f"| {code} | {_cell(meaning)} |" for code, meaning in EXIT_STATUSES]
    return "\n".join(lines) + "\n"



_TABLE_START = "<!-- absent-settings: generated from config/gunicorn.py by `" + REGENERATE + "` -->"
_TABLE_END = "<!-- end of absent-settings -->"


def _spelled(entry: GunicornOnly) -> str:
    flags = "/".join(entry.flags)
    return f"`{entry.name}`" + (f" `{flags}`" if flags else "")


def gunicorn_table_markdown() -> str:
    """The table of gunicorn settings treadle lacks: one row per piece of advice."""
    rows: dict[str, list[str]] = {}
    for entry in GUNICORN_ONLY:
        rows.setdefault(entry.advice, []).append(_spelled(entry))
    lines = ["| gunicorn | what treadle says |", "|---|---|"]
    lines += [f"| {', '.join(names)} | {_cell(advice)} |" for advice, names in rows.items()]
    return "\n".join(lines) + "\n"


def with_gunicorn_table(text: str) -> str:
    """docs/gunicorn.md's text with its generated table replaced by the current one."""
    start = text.index(_TABLE_START) + len(_TABLE_START)
    end = text.index(_TABLE_END, start)
    return text[:start] + "\n" + gunicorn_table_markdown() + text[end:]
