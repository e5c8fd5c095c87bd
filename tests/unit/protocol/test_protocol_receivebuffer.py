"""ReceiveBuffer: the bytes it holds always match a plain model, whatever mix of feeds and
takes; whole pieces are handed over without copies; the head search resumes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test_protocol_properties import PROFILE
from treadle.protocol.receivebuffer import ReceiveBuffer


def test_a_piece_taken_whole_is_the_same_object() -> None:
    buf = ReceiveBuffer()
    piece = b"x" * 1000
    buf.feed(piece)
    assert buf.take(5000) is piece
    assert not buf and len(buf) == 0


def test_mutable_input_is_copied() -> None:
    source = bytearray(b"abc")
    buf = ReceiveBuffer()
    buf.feed(source)
    source[0:1] = b"X"
    buf.feed(memoryview(b"def"))
    assert bytes(buf) == b"abcdef"


def test_take_returns_bytes_from_a_bytearray() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"a" * 100)
    buf.feed(b"b")  # small piece: held as a bytearray
    out = buf.take(60)
    assert type(out) is bytes and out == b"a" * 60
    assert buf.take(1000) == b"a" * 40 + b"b"
    assert buf.take(1) is None


def test_head_end_found_across_feeds_and_search_resumes() -> None:
    buf = ReceiveBuffer()
    for piece in (b"GET / HTTP/1.1\r\nHost: a\r", b"\n", b"\r", b"\nrest"):
        assert buf.find_head_end(1 << 30) < 0
        buf.feed(piece)
    assert buf.find_head_end(1 << 30) == len(b"GET / HTTP/1.1\r\nHost: a")
    assert buf.take_head(len(b"GET / HTTP/1.1\r\nHost: a"), 4) == b"GET / HTTP/1.1\r\nHost: a"
    assert bytes(buf) == b"rest"


def test_head_search_says_when_new_bytes_need_a_closer_look() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"GET")
    assert buf.find_head_end(100) == -2  # the first bytes
    buf.feed(b" /")
    assert buf.find_head_end(100) == -1  # nothing but ordinary bytes
    buf.feed(b"x\r")
    assert buf.find_head_end(100) == -1  # a CR at the end is judged with the next byte
    buf.feed(b"\n")
    assert buf.find_head_end(100) == -2  # a LF
    buf.feed(b"Host")
    assert buf.find_head_end(10) == -2  # the alarm size


def test_a_slow_head_is_searched_once() -> None:
    """Each search looks only at the bytes that arrived since the last one (plus the 3
    before them that may start the blank line): no quadratic rescans for slow clients."""
    buf = ReceiveBuffer()
    head = b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 4000 + b"\r\n\r\n"
    for i in range(len(head) - 1):
        buf.feed(head[i : i + 1])
        assert buf.find_head_end(1 << 30) < 0
        assert buf.new_bytes_start() == i  # where this search's new bytes began
    buf.feed(head[-1:])
    assert buf.find_head_end(1 << 30) == len(head) - 4


def test_new_bytes_start_marks_where_the_last_search_began() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"abc")
    assert buf.find_head_end(100) == -2
    assert buf.new_bytes_start() == 0
    buf.feed(b"defg")
    assert buf.find_head_end(100) == -1
    assert buf.new_bytes_start() == 3


operations = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), st.binary(min_size=1, max_size=40)),
        st.tuples(st.just("take"), st.integers(0, 50)),
        st.tuples(st.just("skip"), st.integers(0, 5)),
        st.tuples(st.just("find"), st.just(0)),
    ),
    max_size=40,
)


@PROFILE
@given(operations)
def test_buffer_matches_a_plain_model(ops: list[tuple[str, object]]) -> None:
    buf = ReceiveBuffer()
    model = b""
    for kind, arg in ops:
        if kind == "feed":
            assert isinstance(arg, bytes)
            buf.feed(arg)
            model += arg
        elif kind == "take":
            assert isinstance(arg, int)
            out = buf.take(arg)
            expected = model[:arg]
            assert out == (expected if model else None)
            model = model[len(expected):]
        elif kind == "skip":
            assert isinstance(arg, int)
            count = min(arg, len(model))
            buf.skip(count)
            model = model[count:]
        else:
            found = buf.find_head_end(1 << 30)
            assert max(found, -1) == model.find(b"\r\n\r\n")
        assert bytes(buf) == model
        assert len(buf) == len(model)
        assert buf.startswith(b"\r\n") == model.startswith(b"\r\n")
