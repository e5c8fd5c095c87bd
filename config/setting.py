# What one setting is (Setting), the sections they are grouped in and how a default is shown:
# the record config/schema.py (and config/schema_logging.py) fill the table with.
from __future__ import annotations

from dataclasses import dataclass

from . import validators as v

__all__ = ["ENV_PREFIX", "INTERNAL_VARIABLES", "SECTIONS", "Setting", "default_display"]

ENV_PREFIX = "TREADLE_"
# Variables with the prefix that are not settings: what a process hands its successor
# (server/reexec.py: the listeners a SIGUSR2 passes on).
INTERNAL_VARIABLES = frozenset({"TREADLE_FDS"})

SECTIONS = (
    "Config file",
    "Application",
    "Server socket",
    "Workers",
    "Timeouts",
    "Request limits",
    "Proxies and headers",
    "TLS",
    "HTTP/2",
    "Logging",
    "Process",
    "Debugging",
)


@dataclass(frozen=True)
class Setting:
    """One setting: its name (the TOML key and Config attribute) and how each source spells it.

    ``flags`` take a value, or none when ``switch`` (then they set true and ``negative_flags``
    set false); ``repeat`` flags build a list, one item per use. ``positional`` names the
    positional argument instead. The first long flag names the source in messages.
    """

    name: str
    section: str
    validator: v.Validator
    default: object
    help: str
    flags: tuple[str, ...] = ()
    metavar: str | None = None
    switch: bool = False
    negative_flags: tuple[str, ...] = ()
    repeat: bool = False
    positional: str | None = None
    in_file: bool = True
    in_env: bool = True
    default_text: str | None = None
    details: str = ""
    gunicorn: str = ""
    secret: bool = False  # never printed by --print-config
    flag_const: str | None = None  # the value of the flag given without one (nargs="?")

    @property
    def env(self) -> str | None:
        """The environment variable, or None for settings only the command line can give."""
        return ENV_PREFIX + self.name.upper() if self.in_env else None

    @property
    def flag(self) -> str:
        """The flag that names this setting in messages (the first long one)."""
        if self.positional:
            return self.positional
        longs = [flag for flag in self.flags if flag.startswith("--")]
        return longs[0] if longs else self.flags[0]


def default_display(setting: Setting) -> str:
    """The default as help and docs show it."""
    value = setting.default
    if setting.default_text is not None:
        return setting.default_text
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "none"
    if value == "":
        return "empty"
    return f"{value:g}" if isinstance(value, float) else str(value)
