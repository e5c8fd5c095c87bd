"""The JSON form of both logs (log_format = json): one object per line, valid whatever a client
sends, so that a log shipper parses it without a grok pattern and a quote in a header cannot
break a line (what gunicorn users meet when they write JSON by hand into access_log_format).

Text that came off the wire (the path, headers) is in the environ as latin-1 characters, one
per byte (PEP 3333). Here it is decoded back as UTF-8, with each byte that is not UTF-8 shown
as `\\xNN`, as the text log shows it: no lone surrogates, which strict JSON parsers refuse.
The encoder escapes every control character and everything beyond ASCII (`\\uXXXX`), so a
line is pure ASCII: no byte in it can end a line for any reader (NEL, U+2028 included).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

_encode = json.JSONEncoder(ensure_ascii=True, check_circular=False,
                           separators=(",", ":")).encode
_SECOND_CACHE: tuple[int, str] = (-1, "")  # (second, its ISO text): replaced whole


def iso_time(now_s: float) -> str:
    """`2026-12-05T05:27:35.123Z`: UTC, milliseconds; the seconds formatted once a second."""
    global _SECOND_CACHE
    second = int(now_s)
    cached = _SECOND_CACHE
    if cached[0] != second:
        cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _SECOND_CACHE = cached
    return f"{cached[1]}.{int((now_s - second) * 1000):03d}Z"


def wire_text(value: str) -> str:
    """An environ string from the wire (one character per byte) as the text it encodes."""
    if value.isascii():
        return value
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:  # not from the wire (middleware changed it): already text
        return value
    return raw.decode("utf-8", "backslashreplace")


def _optional(value: object) -> str | None:
    if value is None:
        return None
    return wire_text(value if type(value) is str else str(value))


def access_json(environ: dict[str, Any], status: str, sent_bytes: int,
                duration_s: float) -> str:
    """The access log line of one request, as a JSON object (fields in docs/logging.md)."""
    get = environ.get
    code = status[:3]
    return _encode({
        "time": iso_time(time.time()),
        "remote_addr": get("REMOTE_ADDR") or None,
        "method": _optional(get("REQUEST_METHOD")),
        "path": wire_text(get("SCRIPT_NAME", "") + get("PATH_INFO", "")),
        "query": wire_text(get("QUERY_STRING", "")),
        "protocol": get("SERVER_PROTOCOL"),
        "status": int(code) if code.isdigit() else None,
        "response_bytes": sent_bytes,
        "duration_s": round(duration_s, 6),
        "user_agent": _optional(get("HTTP_USER_AGENT")),
        "referer": _optional(get("HTTP_REFERER")),
        "request_id": get("treadle.request_id"),
        "pid": os.getpid(),
    })


class JSONFormatter(logging.Formatter):
    """The error log as JSON lines: time, level, logger, pid, message and, when a record
    carries one, the whole traceback as one string field ("exception"). Usable in a
    logconfig_dict too: {"()": "treadle.server.logjson.JSONFormatter"}."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _encode(entry)


class LogLines:
    """wsgi.errors when the error log is JSON: each write becomes one record of the
    `treadle.error.wsgi` logger (level ERROR), so what an application writes there stays
    inside the JSON lines instead of between them. Blank writes (print's newline) are skipped."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("treadle.error.wsgi")

    def write(self, text: str) -> int:
        message = text.rstrip("\r\n")
        if message.strip():
            self.logger.error("%s", message)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass
