"""The error log (standard `logging`) and the access log (gunicorn's format language): their
handlers, reopening their files (USR1), and the text form of an access line. The JSON form
is server/logjson.py; setting the loggers up from the configuration, server/logsetup.py.

Access log atoms follow gunicorn's `access_log_format`: h l u t r s m U q H b B f a T M D L p,
`{header}i` (request), `{header}o` (response), `{variable}e` (environ), names in any case.
Unknown atoms give "-". Values from the request are escaped, so a client cannot forge fields
or lines; atoms are computed only when the format names them (this runs for every request).
"""

from __future__ import annotations

import base64
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from typing import IO, Any

from .logjson import JSONFormatter, LogLines

ERROR_LOGGER = "treadle.error"
ACCESS_LOGGER = "treadle.access"
_ERROR_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def log_handler(destination: str, stream: IO[str], formatter: logging.Formatter
                ) -> logging.Handler:
    """A handler writing to `stream` ("-") or appending to the file `destination`."""
    handler: logging.Handler
    if destination == "-":
        handler = logging.StreamHandler(stream)
    else:
        handler = logging.FileHandler(destination, encoding="utf-8")
    handler.setFormatter(formatter)
    return handler


def error_formatter(json_lines: bool) -> logging.Formatter:
    return JSONFormatter() if json_lines else logging.Formatter(_ERROR_FORMAT, _DATE_FORMAT)


def reopen_log_files() -> int:
    """Reopen the error and access log files at their paths (after logrotate moved them).

    The new file takes the old one's file descriptor (dup2), so every holder of the old stream
    (wsgi.errors, faulthandler) writes to the new file too. Every logger's file handlers are
    reopened, as gunicorn does: logconfig_dict may have put them anywhere. Returns how many
    were reopened."""
    reopened = 0
    for handler in _file_handlers():
        if handler.stream is not None:
            handler.acquire()
            try:
                handler.stream.flush()
                fresh = os.open(handler.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                0o666)
                try:
                    os.dup2(fresh, handler.stream.fileno())
                finally:
                    os.close(fresh)
                reopened += 1
            finally:
                handler.release()
    return reopened


def _file_handlers() -> list[logging.FileHandler]:
    """The file handlers of every logger, each once (one may serve several loggers)."""
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers.extend(logger for logger in list(logging.Logger.manager.loggerDict.values())
                   if isinstance(logger, logging.Logger))
    found: dict[int, logging.FileHandler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                found.setdefault(id(handler), handler)
    return list(found.values())


def wsgi_errors(logger: logging.Logger) -> Any:
    """wsgi.errors: the error log's stream, or, when the error log writes JSON lines, a
    writer that makes each write a record (so the file stays JSON lines)."""
    if any(isinstance(handler.formatter, JSONFormatter) for handler in logger.handlers):
        return LogLines()
    return error_stream(logger)


def error_stream(logger: logging.Logger) -> IO[str]:
    """The text stream behind the error log (faulthandler writes there)."""
    for handler in logger.handlers:
        stream = getattr(handler, "stream", None)
        if stream is not None:
            return stream  # type: ignore[no-any-return]
    return sys.stderr


def reset(logger: logging.Logger) -> None:
    """Remove and close the logger's handlers (a reload sets them up again)."""
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def escape(value: str) -> str:
    """`value` safe to put in a log line: `"` as `\\"`, `\\` as `\\\\`, every other byte outside
    printable ASCII as `\\xNN` (a character beyond latin-1 as its UTF-8 bytes), as Apache's
    and nginx's access logs do, so a client can never end a quoted field, start a line or
    forge one. Most values need nothing: four C-level checks say so before any work."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return value
    return _UNSAFE.sub(_escaped, value)


_UNSAFE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')  # not printable ASCII, or " or \


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char == '"' or char == "\\":
        return "\\" + char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))


class AccessAtoms(dict):  # type: ignore[type-arg]
    """gunicorn's access_log_format atoms for one finished request, each computed only when
    the format names it (the default names 9 of them). Unknown atoms format as "-".

    Everything that comes from the request or the application (request line, path, query,
    headers, user, environ values, response headers) is escaped (`escape`); the numbers,
    times and the status the server itself produced are not."""

    __slots__ = ("environ", "status", "response_headers", "sent_bytes", "duration_s")

    def __init__(self, environ: dict[str, Any], status: str,
                 response_headers: Iterable[tuple[bytes, bytes]], sent_bytes: int,
                 duration_s: float) -> None:
        super().__init__()
        self.environ = environ
        self.status = status
        self.response_headers = response_headers
        self.sent_bytes = sent_bytes
        self.duration_s = duration_s

    def __missing__(self, key: str) -> str:
        letter = _LETTERS.get(key)
        if letter is not None:
            return letter(self)
        if len(key) > 3 and key[0] == "{" and key[-2] == "}":
            lookup = _BRACED.get(key[-1])
            if lookup is not None:
                value = lookup(self, key[1:-2])
                if value is not None:
                    return escape(value)
        return "-"


def _request_line(atoms: AccessAtoms) -> str:
    environ = atoms.environ
    path = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
    return escape(f"{environ.get('REQUEST_METHOD', '-')} {path} "
                  f"{environ.get('SERVER_PROTOCOL', '-')}")


def _environ_text(name: str, default: str) -> Callable[[AccessAtoms], str]:
    def text(atoms: AccessAtoms) -> str:
        value = atoms.environ.get(name)
        return escape(value if type(value) is str else str(value)) if value else default

    return text


_LETTERS: dict[str, Callable[[AccessAtoms], str]] = {
    "h": _environ_text("REMOTE_ADDR", "-"),
    "l": lambda atoms: "-",
    "u": lambda atoms: escape(_basic_auth_user(atoms.environ.get("HTTP_AUTHORIZATION", ""))),
    "t": lambda atoms: _local_time(),
    "r": _request_line,
    "s": lambda atoms: atoms.status.split(" ", 1)[0],
    "m": _environ_text("REQUEST_METHOD", "-"),
    "U": _environ_text("PATH_INFO", ""),
    "q": _environ_text("QUERY_STRING", ""),
    "H": _environ_text("SERVER_PROTOCOL", "-"),
    "b": lambda atoms: str(atoms.sent_bytes) if atoms.sent_bytes else "-",
    "B": lambda atoms: str(atoms.sent_bytes),
    "f": _environ_text("HTTP_REFERER", "-"),
    "a": _environ_text("HTTP_USER_AGENT", "-"),
    "T": lambda atoms: str(int(atoms.duration_s)),
    "M": lambda atoms: str(int(atoms.duration_s * 1000)),
    "D": lambda atoms: str(int(atoms.duration_s * 1_000_000)),
    "L": lambda atoms: f"{atoms.duration_s:.6f}",
    "p": lambda atoms: f"<{os.getpid()}>",
}


def _request_header(atoms: AccessAtoms, name: str) -> str | None:
    """`{name}i`: a request header, any case; from the environ, where the server put it."""
    lowered = name.lower()
    if lowered == "content-type" or lowered == "content-length":
        key = lowered.upper().replace("-", "_")
    elif "_" in lowered:  # such headers are never in the environ (they would collide)
        return None
    else:
        key = "HTTP_" + lowered.upper().replace("-", "_")
    value = atoms.environ.get(key)
    return None if value is None else str(value)


def _environ_value(atoms: AccessAtoms, name: str) -> str | None:
    """`{name}e`: an environ value; names match in any case, as gunicorn's do."""
    environ = atoms.environ
    value = environ.get(name, _ABSENT)
    if value is _ABSENT:
        value = environ.get(name.upper(), _ABSENT)
    if value is _ABSENT:
        lowered = name.lower()
        for key, candidate in environ.items():
            if key.lower() == lowered:
                value = candidate
    return None if value is _ABSENT else str(value)


def _response_header(atoms: AccessAtoms, name: str) -> str | None:
    """`{name}o`: a response header, any case; the last of several (as gunicorn)."""
    wanted = name.lower().encode("latin-1", "replace")
    found = None
    for key, value in atoms.response_headers:
        if key.lower() == wanted:
            found = value
    return None if found is None else found.decode("latin-1")


_ABSENT = object()
_BRACED: dict[str, Callable[[AccessAtoms, str], str | None]] = {
    "i": _request_header,
    "e": _environ_value,
    "o": _response_header,
}
_TIME_CACHE: tuple[int, str] = (0, "")  # (second, its `t` text): replaced whole, never mutated


def _local_time() -> str:
    global _TIME_CACHE
    now = int(time.time())
    cached = _TIME_CACHE
    if cached[0] != now:
        cached = (now, time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(now)))
        _TIME_CACHE = cached
    return cached[1]


def access_atoms(
    environ: dict[str, Any],
    status: str,
    response_headers: Iterable[tuple[bytes, bytes]],
    sent_bytes: int,
    duration_s: float,
) -> AccessAtoms:
    """The values gunicorn's access_log_format can name, for one finished request."""
    return AccessAtoms(environ, status, response_headers, sent_bytes, duration_s)


def format_access(log_format: str, atoms: dict[str, Any]) -> str:
    try:
        return log_format % atoms
    except (TypeError, ValueError, KeyError) as exc:
        return f"(bad access_log_format {log_format!r}: {exc})"


def _basic_auth_user(authorization: str) -> str:
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return "-"
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return "-"
    return decoded.partition(":")[0] or "-"
