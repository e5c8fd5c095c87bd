# A Python settings file (gunicorn.conf.py) handed to treadle, which reads TOML: say so, and
# show what its simple assignments would be in TOML, so a gunicorn user can switch in one
# step. The file is only parsed (ast), never run: a settings file must not execute code.
from __future__ import annotations

import ast

from . import gunicorn
from .errors import ConfigError, Invalid
from .render import toml_value
from .schema import ENV_PREFIX, SETTINGS

__all__ = ["looks_like_python", "python_config_error"]

_FILE_SETTINGS = {setting.name: setting for setting in SETTINGS if setting.in_file}


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def looks_like_python(filename: str, text: str) -> bool:
    """A file that is not TOML is taken for Python when named *.py or when it parses as
    Python (`workers = 4`, `reload = True`)."""
    return filename.endswith(".py") or _parse(text) is not None


def _assignments(tree: ast.Module) -> list[tuple[str, ast.expr | None]]:
    """(name, value) of each top-level `name = value`; hooks (`def on_starting`) as None."""
    found: list[tuple[str, ast.expr | None]] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            found.append((node.targets[0].id, node.value))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            found.append((node.target.id, node.value))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((node.name, None))
    return found


def _toml_line(name: str, value: ast.expr | None) -> str:
    entry = gunicorn.by_name(name)
    if entry is not None:
        return f"# {name}: not in treadle: {entry.advice}"
    setting = _FILE_SETTINGS.get(name)
    if setting is None or value is None:
        return f"# {name}: not a treadle setting"
    try:
        literal = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return (f"# {name} = {ast.unparse(value)}: computed in Python; compute it where "
                f"treadle is started and set {ENV_PREFIX}{name.upper()}")
    if isinstance(literal, list):
        literal = tuple(literal)
    try:
        setting.validator(literal)
        return f"{name} = {toml_value(literal)}"
    except (Invalid, TypeError) as exc:
        reason = exc.describe(setting.validator.expected, literal) \
            if isinstance(exc, Invalid) else "no TOML form"
        return f"# {name} = {ast.unparse(value)}: {reason}"


def python_config_error(label: str, text: str) -> ConfigError:
    """The error for a Python settings file: what treadle reads, and the file in TOML."""
    problem = f"{label}: treadle reads TOML, not a Python config file like gunicorn's " \
              f"(see {gunicorn.DOCS})"
    tree = _parse(text)
    lines = [_toml_line(name, value) for name, value in _assignments(tree)] if tree else []
    if not lines:
        return ConfigError(problem)
    return ConfigError(problem + "; its settings in TOML would be:",
                       details="".join(line + "\n" for line in lines))
