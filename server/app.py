"""Find and load the WSGI application named by the `wsgi_app` setting.

`module:attr`, `module:factory()` (called without arguments; literal arguments allowed) and
`module` (attribute `application`). `chdir` and `raw_env` take effect first, so that an
application reading its environment at import time sees them. Every failure becomes one
AppLoadError with a one-line message; the command line turns it into exit status 3. When the
application's own code raised (at import, or in its factory), the error also carries that
traceback as Python would print it for `python -c 'import app'`: the application's frames,
without importlib's and ours, so the file and line to fix are the first thing a user sees.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

WSGIApplication = Callable[..., Any]


class AppLoadError(Exception):
    """The application cannot be loaded; the message is one line naming why.

    ``traceback`` is the application's own traceback (formatted, ending in a newline) when
    its code raised, else empty; callers print it before the message.
    """

    def __init__(self, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.traceback = traceback


def apply_process_environment(cfg: Any) -> None:
    """Apply chdir (also putting the directory first on sys.path) and raw_env."""
    chdir = getattr(cfg, "chdir", None)
    if chdir:
        try:
            os.chdir(chdir)
        except OSError as exc:
            raise AppLoadError(f"cannot change directory to {chdir!r}: {exc.strerror}") from None
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for item in getattr(cfg, "raw_env", ()) or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise AppLoadError(f"raw_env entry {item!r} is not KEY=VALUE")
        os.environ[key] = value


def load_app(cfg: Any) -> WSGIApplication:
    """Apply chdir and raw_env, then import and return `cfg.wsgi_app`."""
    apply_process_environment(cfg)
    spec = getattr(cfg, "wsgi_app", None)
    if not spec:
        raise AppLoadError("no application given (expected module:attr)")
    return import_app(spec)


def import_app(spec: str) -> WSGIApplication:
    """Import `module[:attr|:factory(...)]` and return the callable it names."""
    module_name, _, expression = spec.partition(":")
    module_name = module_name.strip()
    expression = expression.strip() or "application"
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
        raise AppLoadError(f"{spec!r} is not a valid application path (expected module:attr)")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and _is_package_of(exc.name, module_name):
            raise AppLoadError(f"no module named {module_name!r}") from None
        raise _raised_by_app(f"importing {module_name!r}", exc) from None
    except BaseException as exc:  # the app's import-time code may raise anything
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _raised_by_app(f"importing {module_name!r}", exc) from None
    app = _evaluate(module, module_name, expression)
    if not callable(app):
        raise AppLoadError(f"{module_name}:{expression} is not callable (got {type(app).__name__})")
    return app  # type: ignore[no-any-return]


def _evaluate(module: Any, module_name: str, expression: str) -> Any:
    """Resolve `attr`, `attr.sub` or `factory(literal args)` against the module."""
    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise AppLoadError(f"{expression!r} is not an attribute name or a call") from None
    call_args: list[Any] | None = None
    call_kwargs: dict[str, Any] = {}
    if isinstance(node, ast.Call):
        try:
            call_args = [ast.literal_eval(arg) for arg in node.args]
            call_kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
        except ValueError:
            raise AppLoadError(f"{expression!r}: factory arguments must be literals") from None
        node = node.func
    path: list[str] = []
    while isinstance(node, ast.Attribute):
        path.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise AppLoadError(f"{expression!r} is not an attribute name or a call")
    path.insert(0, node.id)
    target: Any = module
    for name in path:
        try:
            target = getattr(target, name)
        except AttributeError:
            raise AppLoadError(f"module {module_name!r} has no attribute {name!r}") from None
    if call_args is None:
        return target
    try:
        return target(*call_args, **call_kwargs)
    except Exception as exc:
        raise _raised_by_app(f"calling {module_name}:{expression}", exc) from None


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())


def _is_package_of(missing: str, module_name: str) -> bool:
    """True when the module not found is `module_name` or one of its parent packages (the
    path given is wrong), not something the application itself imports."""
    return module_name == missing or module_name.startswith(missing + ".")


def _raised_by_app(doing: str, exc: BaseException) -> AppLoadError:
    return AppLoadError(f"{doing} failed: {_one_line(exc)}", app_traceback(exc))


# Frames that are loading machinery, not the application: importlib's (frozen and
# importlib/__init__.py's import_module) and this module's. Python's own `import` hides the
# frozen ones the same way.
_MACHINERY_FILES = frozenset({importlib.__file__, __file__})


def _machinery(filename: str) -> bool:
    return filename.startswith("<frozen importlib") or filename in _MACHINERY_FILES


def app_traceback(exc: BaseException) -> str:
    """`exc`'s traceback as Python prints it, without the loading machinery's frames (also
    in chained exceptions). A SyntaxError keeps its file, line and caret. Empty when no
    frame of the application's is left (`json:dumps()` called with missing arguments): the
    one-line summary says all there is."""
    shown = traceback.TracebackException.from_exception(exc)
    pending, seen = [shown], set()
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        item.stack = traceback.StackSummary.from_list(
            [frame for frame in item.stack if not _machinery(frame.filename)])
        nested = [item.__cause__, item.__context__, *(getattr(item, "exceptions", None) or ())]
        pending.extend(other for other in nested if other is not None)
    if not shown.stack and not isinstance(exc, SyntaxError):
        return ""
    return "".join(shown.format())
