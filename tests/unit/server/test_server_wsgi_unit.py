"""server/wsgi.py: environ building, start_response checks, wsgi.input, trusted proxies."""

from __future__ import annotations

import io
import logging
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from treadle.server import wsgi
from treadle.server.wsgi import (
    InputStream,
    TrustedProxies,
    build_environ,
    encode_headers,
    environ_key,
    parse_status,
    split_target,
)

BASE = {"SCRIPT_NAME": "/app", "wsgi.url_scheme": "http"}


def environ(target: bytes, *headers: tuple[bytes, bytes], trusted: bool = True,
            root: str = "/app") -> dict:
    return build_environ(dict(BASE, SCRIPT_NAME=root), b"GET", target, b"1.1", list(headers),
                         root, trusted)


@pytest.mark.parametrize("target, path", [
    (b"/app/x", "/x"), (b"/app", ""), (b"/apple", "/apple"), (b"/app%2Fx", "/x"),
    (b"/a%20b%ff", "/a b\xff"), (b"http://host:1/app/y?q", "/y"), (b"/", "/"),
])
def test_path_info_is_percent_decoded_latin1_and_root_stripped(target, path):
    assert environ(target)["PATH_INFO"] == path


def test_the_target_cache_gives_the_same_answers_and_stays_bounded():
    import treadle.server.wsgi as wsgi

    # Twice each: the second answer comes from the cache, and must match the first
    # (including the root_path strip, which is applied after the cache).
    for root in ("/app", ""):
        for _ in range(2):
            assert environ(b"/app/x?q=1", root=root)["PATH_INFO"] == ("/x" if root else "/app/x")
            assert environ(b"/app/x?q=1", root=root)["QUERY_STRING"] == "q=1"
    for number in range(3 * wsgi._TARGETS_MAX):
        assert split_target(b"/n/%d?x" % number) == (f"/n/{number}", "x", f"/n/{number}?x")
    assert len(wsgi._TARGETS) <= wsgi._TARGETS_MAX
    long_target = b"/" + b"a" * wsgi._TARGET_CACHE_MAX_BYTES
    split_target(long_target)
    assert long_target not in wsgi._TARGETS


def test_headers_join_drop_underscores_and_special_names():
    env = environ(b"/?a=%20", (b"x-a", b"1"), (b"x-a", b"2"), (b"x_a", b"evil"),
                  (b"content-type", b"t/p"), (b"content-length", b"0"))
    assert env["HTTP_X_A"] == "1, 2"
    assert env["CONTENT_TYPE"] == "t/p" and env["CONTENT_LENGTH"] == "0"
    assert env["QUERY_STRING"] == "a=%20"
    assert environ_key(b"x_a") == ""


@pytest.mark.parametrize("headers, scheme", [
    ([(b"x-forwarded-proto", b"https")], "https"),
    ([(b"x-forwarded-proto", b"HTTPS, http")], "https"),
    ([(b"forwarded", b'for=1.2.3.4;proto="https"')], "https"),
    ([(b"x-forwarded-ssl", b"on")], "https"),
    ([(b"x-forwarded-proto", b"gopher")], "http"),
])
def test_trusted_proxy_sets_the_scheme(headers, scheme):
    assert environ(b"/", *headers)["wsgi.url_scheme"] == scheme


def test_untrusted_peer_loses_forwarded_headers():
    env = environ(b"/", (b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"1.2.3.4"),
                  (b"forwarded", b"for=x"), (b"x-real-ip", b"1.1.1.1"), trusted=False)
    assert env["wsgi.url_scheme"] == "http"
    assert not [k for k in env if "FORWARD" in k or "REAL" in k]


def test_trusted_proxies_match_addresses_networks_and_unix_peers():
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "::1"])
    assert proxies.trusts("127.0.0.1") and proxies.trusts("10.2.3.4") and proxies.trusts("::1")
    assert proxies.trusts("::ffff:10.1.1.1") and proxies.trusts(None)
    assert not proxies.trusts("11.0.0.1") and not proxies.trusts("not an ip")
    assert TrustedProxies(["*"]).trusts("8.8.8.8")


@pytest.mark.parametrize("status", ["200 OK", "404 Not Found", "599 ", "204 No Content"])
def test_good_statuses(status):
    code, reason = parse_status(status)
    assert str(code) == status[:3] and reason == status[4:].encode()


@pytest.mark.parametrize("status", ["OK", "200", "200OK", "2000 OK", "100 Continue",
                                    "200 OK\r\nX: y", b"200 OK", 200, "600 Nope", "20x OK"])
def test_bad_statuses(status):
    with pytest.raises((TypeError, ValueError)):
        parse_status(status)


LOG = logging.getLogger("test.wsgi.headers")


@pytest.mark.parametrize("headers", [
    [("X", 1)], [(b"X", "1")], [("X Y", "1")], [("", "1")], [("X", "a\nb")], [("X", "a\rb")],
    [("X", "a\x00b")], [("X", "a\x0bb")], [("X", "\x0ca")], [("X", "\u20ac")],
    [(" X", "1")], [("X ", "1")], [("X:", "1")], [("X", "1", "2")], ["X: 1"], "X",
    [("Connection", "close\r\nX-Injected: 1")], [("Keep-Alive", "5\n")],
])
def test_bad_headers(headers):
    with pytest.raises((TypeError, ValueError)):
        encode_headers(headers, LOG)


def test_a_control_byte_refusal_names_the_header():
    with pytest.raises(ValueError, match="'Set-Cookie'.*control characters"):
        encode_headers([("Set-Cookie", "a=1\r\nX-Injected: 1")], LOG)


def test_good_headers_keep_their_case_and_are_encoded():
    assert encode_headers([("Content-Type", "text/plain"), ("X-Latin", "caf\xe9")], LOG) == (
        [(b"Content-Type", b"text/plain"), (b"X-Latin", b"caf\xe9")], False)


def test_values_lose_surrounding_spaces_and_tabs_only():
    headers = [("Set-Cookie", " csrftoken=abc; Path=/"), ("X-A", "a \t"), ("X-B", "\t in side\tb "),
               ("X-Empty", "  ")]
    for _ in range(2):  # the second time from the cache of checked pairs
        assert encode_headers(headers, LOG) == ([
            (b"Set-Cookie", b"csrftoken=abc; Path=/"), (b"X-A", b"a"), (b"X-B", b"in side\tb"),
            (b"X-Empty", b"")], False)


@pytest.mark.parametrize("value, close", [
    ("close", True), ("Close", True), (" keep-alive , CLOSE", True), ("keep-alive", False),
    ("upgrade", False), ("", False),
])
def test_connection_is_dropped_and_close_reported(value, close):
    assert encode_headers([("X", "1"), ("Connection", value)], LOG) == ([(b"X", b"1")], close)


def test_hop_by_hop_headers_are_dropped_with_one_warning_per_name(caplog):
    names = ["Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "TE", "Trailer",
             "Trailers", "Proxy-Authenticate", "Proxy-Authorization"]
    wsgi._WARNED_HOP_NAMES.clear()
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        for _ in range(3):
            for name in names:
                assert encode_headers([(name, "x"), ("X-Kept", "1")], LOG) == (
                    [(b"X-Kept", b"1")], False)
            encode_headers([("keep-alive", "timeout=5"), ("Connection", "close")], LOG)
    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == len(names), warned
    assert all(f"header {name}:" in line for name, line in zip(names, warned, strict=True))
    assert "frames the body itself" in warned[names.index("Transfer-Encoding")]


class Chunks:
    """A body source handing out fixed pieces, as the HTTP/1.1 driver does."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = list(pieces)
        self.calls = 0

    def read_body_chunk(self) -> bytes | None:
        self.calls += 1
        return self.pieces.pop(0) if self.pieces else None


def test_input_stream_read_sizes_and_lines():
    stream = InputStream(Chunks(b"ab", b"c\nde", b"", b"f\ng"))
    assert stream.read(1) == b"a"
    assert stream.readline() == b"bc\n"
    assert stream.readline(2) == b"de"
    assert list(stream) == [b"f\n", b"g"]
    assert stream.read() == b"" and stream.read(5) == b"" and stream.readline() == b""


def test_input_stream_reads_lazily():
    source = Chunks(b"x" * 10, b"y" * 10)
    stream = InputStream(source)
    assert stream.read(5) == b"xxxxx"
    assert source.calls == 1  # the second piece is not fetched before it is needed
    assert stream.read() == b"xxxxx" + b"y" * 10
    assert InputStream(Chunks(b"1\n2\n", b"3")).readlines(3) == [b"1\n", b"2\n"]


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"\n")),
                       max_size=8),
       calls=st.lists(st.tuples(st.sampled_from(["read", "readline"]),
                                st.integers(min_value=-1, max_value=50)), max_size=12))
def test_input_stream_reads_as_a_file_of_the_whole_body(pieces, calls):
    stream, whole = InputStream(Chunks(*pieces)), io.BytesIO(b"".join(pieces))
    for name, size in calls:
        assert getattr(stream, name)(size) == getattr(whole, name)(size)
    assert stream.read() == whole.read()


def test_input_stream_copies_only_what_it_returns():
    """Reading 64 KiB out of pieces of other sizes allocates one block of 64 KiB: what was
    held is neither joined nor re-sliced (blocks of varied sizes fragmented glibc's heaps
    under steady uploads), and a piece of the size asked for is handed out as it is."""
    piece = 60_000
    pieces = [bytes([65 + n]) * piece for n in range(6)]
    stream = InputStream(Chunks(*pieces))
    stream.read(1)  # the first piece is held, with an offset into it
    tracemalloc.start()
    try:
        for _ in range(4):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            data = stream.read(65536)
            peak = tracemalloc.get_traced_memory()[1] - before
            assert len(data) == 65536
            assert peak < 65536 + 4096, peak  # the block returned, and a little bookkeeping
            del data
    finally:
        tracemalloc.stop()
    exact = InputStream(Chunks(*pieces))
    assert exact.read(piece) is pieces[0]
