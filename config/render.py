# --print-config: the effective settings written as TOML that treadle can read back, each
# line commented with where its value came from. Settings a file cannot hold (config, the
# actions) and unset optional ones (TOML has no null) appear as comments.
from __future__ import annotations

import json

from .model import Config
from .schema import SECTIONS, SETTINGS

__all__ = ["to_toml", "toml_value"]


def toml_value(value: object) -> str:
    """A TOML literal for a setting's value (str, int, float, bool, a tuple of str, or a
    table of those)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # a JSON string (ASCII, \uXXXX escapes) is a valid TOML basic string
        return json.dumps(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table (logconfig_dict), keys quoted
        return "{" + ", ".join(f"{json.dumps(str(key))} = {toml_value(item)}"
                               for key, item in value.items()) + "}"
    raise TypeError(f"no TOML form for {value!r}")


def to_toml(cfg: Config) -> str:
    """The effective settings as TOML, grouped by section, each with a comment naming its source."""
    lines = [
        "# treadle: effective settings, each with the source of its value.",
        "# Save as treadle.toml to reuse them.",
    ]
    for section in SECTIONS:
        lines.append("")
        lines.append(f"# {section}")
        for setting in SETTINGS:
            if setting.section != section:
                continue
            value = getattr(cfg, setting.name)
            source = cfg.sources.get(setting.name, "default")
            if value is None:
                line = f"# {setting.name} is unset"
            elif setting.secret:
                line = f"# {setting.name} is set (not shown)"
            else:
                shown = toml_value(value)
                if setting.name == "umask" and isinstance(value, int):
                    shown = f"0o{value:03o}"  # a mask reads best in octal; TOML has 0o
                line = f"{setting.name} = {shown}"
                if not setting.in_file:
                    line = "# " + line + "  (not a file setting)"
            lines.append(f"{line}  # {source}")
    return "\n".join(lines) + "\n"
