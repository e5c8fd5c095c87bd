"""The error log (standard `logging`) and the access log (gunicorn's format language).

Access log atoms follow gunicorn's `access_log_format`: h l u t r s m U q H b B f a T M D L p,
`{header}i` (request), `{header}o` (response), `{variable}e` (environ). Unknown atoms give "-".
"""

from __future__ import annotations

import base64
import logging
import os
import sys
import time
from collections.abc import Iterable
from typing import IO, Any

ERROR_LOGGER = "treadle.error"
ACCESS_LOGGER = "treadle.access"
_ERROR_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def setup_error_log(destination: str | None, level: str) -> logging.Logger:
    """Send treadle.error to stderr ("-" or None) or append to a file, at `level`."""
    logger = logging.getLogger(ERROR_LOGGER)
    _reset(logger)
    handler: logging.Handler
    if destination in (None, "-"):
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.FileHandler(destination, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_ERROR_FORMAT, _DATE_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger


def setup_access_log(destination: str | None) -> logging.Logger | None:
    """treadle.access to stdout ("-") or a file; None when the access log is off."""
    logger = logging.getLogger(ACCESS_LOGGER)
    _reset(logger)
    if destination is None:
        return None
    handler: logging.Handler
    if destination == "-":
        handler = logging.StreamHandler(sys.stdout)
    else:
        handler = logging.FileHandler(destination, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def reopen_log_files() -> int:
    """Reopen the error and access log files at their paths (after logrotate moved them).

    The new file takes the old one's file descriptor (dup2), so every holder of the old stream
    (wsgi.errors, faulthandler) writes to the new file too. Returns how many were reopened."""
    reopened = 0
    for name in (ERROR_LOGGER, ACCESS_LOGGER):
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler, logging.FileHandler) or handler.stream is None:
                continue
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


def error_stream(logger: logging.Logger) -> IO[str]:
    """The text stream behind the error log, given to applications as wsgi.errors."""
    for handler in logger.handlers:
        stream = getattr(handler, "stream", None)
        if stream is not None:
            return stream  # type: ignore[no-any-return]
    return sys.stderr


def _reset(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


class _Atoms(dict):  # type: ignore[type-arg]
    """Unknown atoms format as "-"; `{Name}i`-style keys match case-insensitively."""

    def __missing__(self, key: str) -> str:
        lowered = key.lower()
        if lowered != key and lowered in self:
            return self[lowered]  # type: ignore[no-any-return]
        return "-"


def access_atoms(
    environ: dict[str, Any],
    status: str,
    response_headers: Iterable[tuple[bytes, bytes]],
    sent_bytes: int,
    duration_s: float,
) -> dict[str, Any]:
    """The values gunicorn's access_log_format can name, for one finished request."""
    method = environ.get("REQUEST_METHOD", "-")
    path = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    protocol = environ.get("SERVER_PROTOCOL", "-")
    atoms = _Atoms(
        h=environ.get("REMOTE_ADDR") or "-",
        l="-",
        u=_basic_auth_user(environ.get("HTTP_AUTHORIZATION", "")),
        t=time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime()),
        r=f"{method} {path} {protocol}",
        s=status.split(" ", 1)[0],
        m=method,
        U=environ.get("PATH_INFO", ""),
        q=query,
        H=protocol,
        b=str(sent_bytes) if sent_bytes else "-",
        B=str(sent_bytes),
        f=environ.get("HTTP_REFERER", "-"),
        a=environ.get("HTTP_USER_AGENT", "-"),
        T=str(int(duration_s)),
        M=str(int(duration_s * 1000)),
        D=str(int(duration_s * 1_000_000)),
        L=f"{duration_s:.6f}",
        p=f"<{os.getpid()}>",
    )
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            atoms["{" + key[5:].lower().replace("_", "-") + "}i"] = value
        atoms["{" + key + "}e"] = value
    if "CONTENT_TYPE" in environ:
        atoms["{content-type}i"] = environ["CONTENT_TYPE"]
    if "CONTENT_LENGTH" in environ:
        atoms["{content-length}i"] = environ["CONTENT_LENGTH"]
    for name, value in response_headers:
        atoms["{" + name.decode("latin-1").lower() + "}o"] = value.decode("latin-1")
    return atoms


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
