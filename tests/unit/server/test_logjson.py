"""The JSON log pieces (server/logjson.py) and request-id validation (server/requestid.py):
what the e2e tests in tests/e2e/test_logs.py cannot reach byte by byte."""

from __future__ import annotations

import calendar
import json
import logging
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from treadle.server.logjson import JSONFormatter, access_json, iso_time, wire_text
from treadle.server.requestid import RequestIds, valid_id
from treadle.server.wsgi import TrustedProxies


def test_iso_time_is_utc_with_milliseconds() -> None:
    assert iso_time(0.0) == "1970-01-01T00:00:00.000Z"
    second = calendar.timegm((2026, 12, 5, 5, 47, 35, 0, 0, 0))
    assert iso_time(second + 0.1239) == "2026-12-05T05:47:35.123Z"
    assert iso_time(second + 0.9999) == "2026-12-05T05:47:35.999Z"


def test_wire_text_decodes_utf8_and_shows_other_bytes() -> None:
    assert wire_text("/plain") == "/plain"
    assert wire_text("/caf\xc3\xa9") == "/café"
    assert wire_text("/\xff\xc3(") == "/\\xff\\xc3("
    assert wire_text("/already \u2603") == "/already \u2603"  # not from the wire: kept


@settings(deadline=None)  # a busy machine is no failure
@given(st.binary(max_size=64), st.binary(max_size=64))
def test_any_bytes_make_one_ascii_line_that_round_trips(path: bytes, agent: bytes) -> None:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path.decode("latin-1"),
               "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
               "HTTP_USER_AGENT": agent.decode("latin-1"), "REMOTE_ADDR": "::1"}
    line = access_json(environ, "200 OK", 0, 0.25)
    assert line.isascii() and len(line.splitlines()) == 1
    entry = json.loads(line)
    assert entry["path"] == path.decode("utf-8", "backslashreplace")
    assert entry["user_agent"] == agent.decode("utf-8", "backslashreplace")
    assert (entry["status"], entry["duration_s"], entry["referer"]) == (200, 0.25, None)


def test_error_records_carry_the_traceback_as_one_field() -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        record = logging.LogRecord("treadle.error", logging.ERROR, __file__, 1,
                                   "failed %s", ("x\ny",), sys.exc_info())
    entry = json.loads(JSONFormatter().format(record))
    assert (entry["level"], entry["logger"], entry["message"]) == ("ERROR", "treadle.error",
                                                                    "failed x\ny")
    assert entry["exception"].startswith("Traceback") and "KeyError: 'missing'" in \
        entry["exception"]


def test_valid_ids_are_bounded_visible_ascii() -> None:
    assert valid_id("a") and valid_id("x" * 200) and valid_id('"}\\')
    for bad in ("", "x" * 201, "a b", "tab\there", "caf\xe9", "nl\n", "\x7f"):
        assert not valid_id(bad), bad


def test_ids_are_kept_only_from_trusted_peers() -> None:
    ids = RequestIds("X-Trace", TrustedProxies(["10.0.0.0/8"]))
    environ = {"HTTP_X_TRACE": "edge-1"}
    assert ids.assign(environ, "10.1.2.3") == "edge-1" == environ["treadle.request_id"]
    made = ids.assign(environ, "192.0.2.1")
    assert made != "edge-1" and len(made) == 32 and environ["HTTP_X_TRACE"] == "edge-1"
    assert RequestIds.wanted(None, True, "text", "%(h)s") is False
    assert RequestIds.wanted(None, False, "json", "%(h)s") is False
    assert RequestIds.wanted(None, True, "json", "%(h)s") is True
    assert RequestIds.wanted(None, True, "text", "%({Treadle.Request_ID}e)s") is True
    assert RequestIds.wanted("X-Request-ID", False, "text", "") is True
