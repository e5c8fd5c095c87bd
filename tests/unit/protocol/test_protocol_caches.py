"""The engine's module-level caches (constructor fields, field lines, request lines,
Content-Length facts): bounded in count and entry size, never holding what failed a
check, and giving exactly what the uncached path gives."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import field_lists
from treadle.protocol import LocalProtocolError, RemoteProtocolError
from treadle.protocol import head as phead
from treadle.protocol import headers as ph

CACHES = (ph._BYTES_ITEMS, ph._STR_ITEMS, ph._LENGTH_FACTS, phead._LINES,
          phead._REQUEST_LINES, phead._GOOD_HOSTS)


@pytest.fixture(autouse=True)
def empty_caches() -> Iterator[None]:
    for cache in CACHES:
        cache.clear()
    yield
    for cache in CACHES:
        cache.clear()


def facts_tuple(facts: ph.HeadFacts) -> tuple[object, ...]:
    return (facts.content_length, facts.chunked, facts.close, facts.expect_continue,
            facts.upgrade)


def test_field_cache_is_bounded_in_count() -> None:
    for i in range(3 * ph._ITEM_CACHE_MAX):
        ph.normalize_and_validate([(b"X-Id", b"%d" % i), (f"X-Id-{i}", "v")])
        assert len(ph._BYTES_ITEMS) <= ph._ITEM_CACHE_MAX
        assert len(ph._STR_ITEMS) <= ph._ITEM_CACHE_MAX
    for i in range(3 * ph._LENGTH_FACTS_MAX):
        ph.normalize_and_validate([(b"Content-Length", b"%d" % i)])
        assert len(ph._LENGTH_FACTS) <= ph._LENGTH_FACTS_MAX


def test_field_cache_holds_only_short_valid_exact_type_pairs() -> None:
    long_value = b"v" * ph._ITEM_MAX_SIZE
    ph.normalize_and_validate([(b"X-Long", long_value), ("X-Long", long_value.decode())])
    for bad in ([(b"X", b"a\x01b")], [(b"Bad Name", b"x")], [(b"X", b" padded")],
                [("X", "caf\xe9")], [("X", "a\nb")]):
        with pytest.raises((LocalProtocolError, UnicodeEncodeError)):
            ph.normalize_and_validate(bad)
    # Mixed and non-bytes/str types are checked, never cached (a bytes key must not meet
    # an equal-hashing str key).
    ph.normalize_and_validate([(b"X-Mixed", "v"), ("X-Mixed", b"v"),
                               (bytearray(b"X-Ba"), b"v")])
    assert ph._BYTES_ITEMS == {} and ph._STR_ITEMS == {}
    ph.normalize_and_validate([(b"X-Ok", b"v"), ("X-Ok", "v")])
    assert list(ph._BYTES_ITEMS) == [(b"X-Ok", b"v")]
    assert list(ph._STR_ITEMS) == [("X-Ok", "v")]


def test_cached_fields_give_what_the_checks_give() -> None:
    fields = [("Content-Type", "text/plain"), (b"Content-Length", b"14"),
              (b"Server", b"treadle"), ("Transfer-Encoding", "chunked")]
    first = ph.normalize_and_validate(fields)
    second = ph.normalize_and_validate(fields)  # every field from the cache now
    assert first.raw_items() == second.raw_items()
    assert list(first) == list(second)
    # Cached framing fields still go through the framing rules.
    for bad in ([(b"Content-Length", b"14"), (b"Content-Length", b"15")],
                [(b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")]):
        ph.normalize_and_validate(bad[:1])
        with pytest.raises(LocalProtocolError):
            ph.normalize_and_validate(bad)
    equal = ph.normalize_and_validate([(b"Content-Length", b"14"), (b"Content-Length", b"14")])
    assert equal.raw_items() == [(b"Content-Length", b"14")]


@given(field_lists(), st.sampled_from([
    [], [(b"Content-Length", b"7")], [(b"Connection", b"close")], [(b"Host", b"a")],
    [(b"Transfer-Encoding", b"chunked")], [(b"Expect", b"100-continue")],
    [(b"Upgrade", b"h2c")], [(b"Content-Length", b"3, 3")],
]))
def test_remembered_facts_and_lines_match_a_fresh_scan(
    fields: list[tuple[bytes, bytes]], special: list[tuple[bytes, bytes]]
) -> None:
    for _ in range(2):  # uncached, then cached
        headers = ph.normalize_and_validate(fields + special)
        items = headers._full_items
        if headers._facts is not None:
            assert facts_tuple(headers._facts) == facts_tuple(ph._scan_facts(items))
        assert facts_tuple(ph.facts_of_headers(headers)) == facts_tuple(
            ph._scan_facts(items))
        if headers._lines is not None:
            assert headers._lines == [raw + b": " + value for raw, _, value in items]
            assert all(name != b"host" for _, name, _ in items)


def test_line_caches_are_bounded_and_hold_only_parsed_lines() -> None:
    for i in range(3 * phead._LINE_CACHE_MAX):
        phead.parse_fields([b"X-Id: %d" % i], 0, "IDLE")
        phead.parse_request_line(b"GET /%d HTTP/1.1" % i, "IDLE")
        assert len(phead._LINES) <= phead._LINE_CACHE_MAX
        assert len(phead._REQUEST_LINES) <= phead._LINE_CACHE_MAX
    phead._LINES.clear()
    phead._REQUEST_LINES.clear()
    long_line = b"X-Long: " + b"v" * phead._LINE_MAX_SIZE
    phead.parse_fields([long_line], 0, "IDLE")
    phead.parse_request_line(b"GET /" + b"a" * phead._LINE_MAX_SIZE + b" HTTP/1.1", "IDLE")
    for bad in (b"Bad Name: x", b"X : y", b" folded", b"no colon", b": empty"):
        with pytest.raises(RemoteProtocolError):
            phead.parse_fields([bad], 0, "IDLE")
    for bad in (b"GET  / HTTP/1.1", b"GET / HTTP/2.0", b"G@T / HTTP/1.1", b"GET x HTTP/1.1"):
        with pytest.raises(RemoteProtocolError):
            phead.parse_request_line(bad, "IDLE")
    assert phead._LINES == {} and phead._REQUEST_LINES == {}


def test_cached_lines_parse_as_before() -> None:
    lines = [b"GET / HTTP/1.1", b"Host: a", b"Transfer-Encoding: Chunked",
             b"Connection: close", b"Connection: keep-alive", b"X:  b "]
    first = phead.parse_fields(lines, 1, "IDLE")
    second = phead.parse_fields(lines, 1, "IDLE")
    assert first[0].raw_items() == second[0].raw_items()
    assert first[1] == second[1] == [(b"host", b"a"), (b"transfer-encoding", b"chunked"),
                                     (b"connection", b"close")]
    assert phead.parse_request_line(b"GET / HTTP/1.2", "IDLE") == (b"GET", b"/", b"1.1")
    assert phead.parse_request_line(b"GET / HTTP/1.2", "IDLE") == (b"GET", b"/", b"1.1")


def test_good_host_cache_is_bounded_and_holds_only_good_short_hosts() -> None:
    from treadle.protocol.limits import Limits

    limits = Limits(8190, 100, 8190, 16384)

    def parse(host: bytes) -> None:
        head = b"GET / HTTP/1.1\r\nHost: " + host
        phead.parse_request(head, head.split(b"\r\n"), limits, "IDLE")

    for i in range(3 * phead._LINE_CACHE_MAX):
        parse(b"h%d.example" % i)
        assert len(phead._GOOD_HOSTS) <= phead._LINE_CACHE_MAX
    phead._GOOD_HOSTS.clear()
    parse(b"h" * (phead._LINE_MAX_SIZE + 1))
    for bad in (b"a, b", b"a b", b"a\tb"):
        for _ in range(2):
            with pytest.raises(RemoteProtocolError, match="malformed Host"):
                parse(bad)
    assert phead._GOOD_HOSTS == {}
