# The command line, generated from the schema: one argparse option per flag, grouped by
# section, an epilog with the exit statuses and the environment rule. Flags hand back their
# raw text and the spelling used; config/sources.py validates them like any other source, so
# a bad flag reads "command line --threads: expected ..." rather than argparse's wording.
from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from . import gunicorn
from .errors import ConfigError
from .guess import closest
from .schema import ENV_PREFIX, SECTIONS, SETTINGS, Setting, default_display

__all__ = ["EXIT_STATUSES", "FALLBACK_VERSION", "build_parser", "parse_command_line", "version"]

FALLBACK_VERSION = "0.1.0"  # reported when treadle runs from a checkout, not installed

EXIT_STATUSES = (
    (0, "clean stop (or --check-config / --print-config succeeded)"),
    (1, "unexpected failure"),
    (2, "configuration or usage error, including --check-config failures and no APP"),
    (3, "the application cannot be loaded (bad path, import error, not callable)"),
    (4, "a listening socket cannot be opened (address in use, permission, bad fd)"),
)

# What a flag hands back: the spelling used and its raw value (a string, a list of strings
# for repeatable flags, or a bool for switches).
Given = tuple[str, Any]


def version() -> str:
    """The installed distribution's version, else the checkout's constant."""
    from importlib import metadata

    try:
        return metadata.version("treadle")
    except metadata.PackageNotFoundError:
        return FALLBACK_VERSION


class _Parser(argparse.ArgumentParser):
    """Usage errors become ConfigError (one line, exit 2 in main) instead of argparse's exit."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"command line: {message}")


class _Record(argparse.Action):
    """Stores (flag used, raw value); repeatable flags collect a list, switches a bool."""

    def __init__(self, *args: Any, repeat: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.repeat = repeat

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        flag = option_string or str(self.metavar)
        if self.nargs == 0:
            values = self.const
        elif self.repeat:
            previous = getattr(namespace, self.dest, None)
            values = (previous[1] if previous else []) + [values]
        setattr(namespace, self.dest, (flag, values))


class _Version(argparse.Action):
    """Looks the version up only when asked (no metadata reads when building the parser)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"treadle {version()}")
        parser.exit(0)


def _help_text(setting: Setting) -> str:
    parts = [setting.help]
    if setting.positional is None:
        parts.append(f"(default: {default_display(setting)})")
    if setting.env:
        parts.append(f"[{setting.env}]")
    return " ".join(parts).replace("%", "%%")  # argparse %-formats help strings


def _add_setting(group: argparse._ArgumentGroup, setting: Setting) -> None:
    if setting.positional:
        group.add_argument(
            setting.name, nargs="?", action=_Record, metavar=setting.positional,
            help=_help_text(setting),
        )
    elif setting.switch:
        group.add_argument(
            *setting.flags, dest=setting.name, nargs=0, const=True, action=_Record,
            help=_help_text(setting),
        )
        for negative in setting.negative_flags:
            group.add_argument(
                negative, dest=setting.name, nargs=0, const=False, action=_Record,
                help=f"Turn {setting.flag} off.",
            )
    elif setting.flag_const is not None:  # gunicorn's --proxy-protocol alone means auto
        group.add_argument(
            *setting.flags, dest=setting.name, action=_Record, nargs="?",
            const=setting.flag_const, metavar=setting.metavar, help=_help_text(setting),
        )
    else:
        group.add_argument(
            *setting.flags, dest=setting.name, action=_Record, repeat=setting.repeat,
            metavar=setting.metavar, help=_help_text(setting),
        )


def _epilog() -> str:
    statuses = "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_STATUSES)
    return (
        "Every setting except --check-config and --print-config can also come from the\n"
        f"environment as {ENV_PREFIX}<NAME> (the setting's name in capitals, e.g.\n"
        f"{ENV_PREFIX}KEEPALIVE=10); lists are comma-separated, booleans are true/false,\n"
        "1/0 or yes/no, an empty value unsets an optional setting.\n"
        "Precedence: defaults < TOML file < environment < command line.\n\n"
        f"Exit statuses:\n{statuses}\n"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``treadle`` command line, generated from SETTINGS."""
    parser = _Parser(
        prog="treadle",
        usage="treadle [OPTIONS] [APP]",
        description="treadle: a threaded WSGI server. Serve APP (module:attr).",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="Print 'treadle VERSION' and exit."
    )
    for section in SECTIONS:
        group = parser.add_argument_group(section)
        for setting in SETTINGS:
            if setting.section == section:
                _add_setting(group, setting)
    # gunicorn's flags that treadle lacks are recognised (with their values, so `-w 4 app`
    # keeps its APP) only to be refused with advice; --help does not list them.
    for flags, entry in gunicorn.flags_to_recognise():
        parser.add_argument(*flags, dest=_GUNICORN + entry.name, nargs=entry.nargs,
                            action=_Record, const=True, help=argparse.SUPPRESS)
    return parser


_GUNICORN = "gunicorn:"  # the namespace prefix of gunicorn flags that were used


def _all_flags() -> list[str]:
    flags: list[str] = []
    for setting in SETTINGS:
        flags.extend(setting.flags + setting.negative_flags)
    return flags + ["--help", "--version"]


def _unknown(extra: Sequence[str]) -> list[str]:
    """One problem per unknown option; a stray argument only when no option explains it
    (an unknown option's value lands here too)."""
    options = [item.split("=", 1)[0] for item in extra if item.startswith("-") and item != "-"]
    if not options:
        return [f"command line: unexpected argument {extra[0]!r} (only one APP is given)"]
    decoys = [flag for flags, _ in gunicorn.flags_to_recognise() for flag in flags]
    problems = []
    for flag in dict.fromkeys(options):
        guess = closest(flag, _all_flags(), decoys)
        hint = f" (did you mean {guess}?)" if guess else " (see treadle --help)"
        problems.append(f"command line: unknown option {flag}{hint}")
    return problems


def parse_command_line(argv: Sequence[str]) -> tuple[dict[str, Given], list[str]]:
    """The settings given on the command line (name -> (flag used, raw value)) and the
    problems found: every unknown option and every gunicorn flag treadle lacks.

    --help and --version print and raise SystemExit(0); other usage errors (a flag without
    its value) raise ConfigError at once, as argparse stops there.
    """
    namespace, extra = build_parser().parse_known_args(list(argv))
    given: dict[str, Given] = {}
    problems: list[str] = []
    for name, (flag, raw) in vars(namespace).items():
        if name.startswith(_GUNICORN):
            entry = gunicorn.by_name(name.removeprefix(_GUNICORN))
            assert entry is not None
            problems.append(f"command line {flag}: {gunicorn.explain(entry)}")
        else:
            given[name] = (flag, raw)
    if extra:
        problems += _unknown(extra)
        # `--frobnicate 3 app`: argparse took the unknown option's value for APP; the
        # option's error says it all, an error about APP '3' would only confuse
        pairs = zip(argv, argv[1:], strict=False)
        after_unknown = {later for item, later in pairs if item in extra}
        if "wsgi_app" in given and given["wsgi_app"][1] in after_unknown:
            del given["wsgi_app"]
    return given, problems
