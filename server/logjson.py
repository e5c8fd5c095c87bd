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
import json.encoder
import logging
import os
import time
from typing import Any

_quote = json.encoder.encode_basestring_ascii  # the C function json.dumps uses for strings
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


def _string(value: object) -> str:
    """A JSON string of an environ value from the wire, or null."""
    if value is None:
        return "null"
    return _quote(wire_text(value if type(value) is str else str(value)))


def access_json(environ: dict[str, Any], status: str, sent_bytes: int,
                duration_s: float) -> str:
    """The access log line of one request, as a JSON object (fields in docs/logging.md).
    Assembled from C-quoted strings (json's own escaping): a third of what json.dumps of a
    dict costs, on a path that runs for every request."""
    get = environ.get
    code = status[:3]
    if not (code.isascii() and code.isdigit()):
        code = "null"
    request_id = get("treadle.request_id")
    return (
        f'{{"time":"{iso_time(time.time())}","remote_addr":{_string(get("REMOTE_ADDR") or None)},'
        f'"method":{_string(get("REQUEST_METHOD"))},'
        f'"path":{_quote(wire_text(get("SCRIPT_NAME", "") + get("PATH_INFO", "")))},'
        f'"query":{_quote(wire_text(get("QUERY_STRING", "")))},'
        f'"protocol":{_string(get("SERVER_PROTOCOL"))},'
        f'"status":{code},"response_bytes":{int(sent_bytes)},'
        f'"duration_s":{round(duration_s, 6)!r},'
        f'"user_agent":{_string(get("HTTP_USER_AGENT"))},'
        f'"referer":{_string(get("HTTP_REFERER"))},'
        f'"request_id":{"null" if request_id is None else _quote(request_id)},'
        f'"pid":{os.getpid()}}}'
    )


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
