"""Hypothesis strategies for valid HTTP/1.1 messages, built as bytes by hand (not by the
engine's writer) together with the events they must parse to."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Names the generators must not produce at random: they change framing or connection.
RESERVED = {"host", "content-length", "transfer-encoding", "connection", "expect", "upgrade",
            "forwarded", "te", "trailer"}

tokens = st.text(TCHARS, min_size=1, max_size=12)
field_names = tokens.filter(
    lambda n: n.lower() not in RESERVED and not n.lower().startswith("x-forwarded-")
)
_vchars = st.sampled_from([bytes([b]) for b in [*range(0x21, 0x7F), *range(0x80, 0x100)]])
_words = st.lists(_vchars, min_size=1, max_size=6).map(b"".join)
field_values = st.lists(
    st.tuples(st.sampled_from([b" ", b"\t", b"  "]), _words), max_size=4
).flatmap(lambda parts: _words.map(lambda first: first + b"".join(s + w for s, w in parts)))
field_values = st.one_of(st.just(b""), field_values)
ows = st.sampled_from([b"", b" ", b"\t", b" \t "])
path_chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/%?"
targets = st.text(path_chars, max_size=30).map(lambda s: ("/" + s).encode())
methods = st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
                    tokens.filter(lambda m: m not in ("CONNECT", "HEAD")))
bodies = st.binary(max_size=300)


@st.composite
def field_lists(draw: Any, max_size: int = 8) -> list[tuple[bytes, bytes]]:
    names = draw(st.lists(field_names, max_size=max_size))
    return [(name.encode(), draw(field_values)) for name in names]


def _field_lines(fields: list[tuple[bytes, bytes]], draw: Any) -> bytes:
    return b"".join(n + b":" + draw(ows) + v + draw(ows) + b"\r\n" for n, v in fields)


@st.composite
def chunked_bodies(draw: Any, body: bytes) -> bytes:
    """`body` in chunked coding with random sizes, extensions and trailers' start."""
    out = b""
    rest = body
    while rest:
        size = draw(st.integers(1, max(1, len(rest))))
        piece, rest = rest[:size], rest[size:]
        digits = draw(st.sampled_from(["%x", "%X", "%04x"])) % size
        ext = draw(st.sampled_from([b"", b";a", b";a=b", b' ; q="x y"']))
        out += digits.encode() + ext + b"\r\n" + piece + b"\r\n"
    return out + b"0\r\n"


@st.composite
def requests(draw: Any, allow_http10: bool = True) -> tuple[bytes, list[Any]]:
    """(raw request, expected described events) for one valid request."""
    method = draw(methods)
    target = draw(targets)
    version = draw(st.sampled_from(["1.1", "1.0"] if allow_http10 else ["1.1"]))
    fields = draw(field_lists())
    if version == "1.1" or draw(st.booleans()):
        host = draw(st.sampled_from([b"example.com", b"a.b:8080", b"[::1]", b""]))
        fields.insert(draw(st.integers(0, len(fields))), (draw(st.sampled_from(
            [b"Host", b"host", b"HOST"])), host))
    body = draw(bodies)
    framing = draw(st.sampled_from(["none", "length", "chunked"] if version == "1.1"
                                   else ["none", "length"]))
    if framing == "none":
        body = b""
    elif framing == "length":
        fields.append((b"Content-Length", str(len(body)).encode()))
    else:
        fields.append((b"Transfer-Encoding", b"chunked"))
    raw = f"{method} ".encode() + target + f" HTTP/{version}\r\n".encode()
    raw += _field_lines(fields, draw) + b"\r\n"
    trailers: list[tuple[bytes, bytes]] = []
    if framing == "chunked":
        raw += draw(chunked_bodies(body))
        trailers = draw(field_lists(max_size=3))
        raw += _field_lines(trailers, draw) + b"\r\n"
    else:
        raw += body
    events: list[Any] = [("Request", method.encode(), target, version.encode(),
                          [(n, b"chunked" if n == b"Transfer-Encoding" else v)
                           for n, v in fields])]
    if body:
        events.append(("Data", body))
    events.append(("EndOfMessage", trailers))
    return raw, events
