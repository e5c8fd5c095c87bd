"""The cases of benchmarks/fuzz.py: valid HTTP/1.1 requests and HTTP/2 conversations, and the
mutations applied to them. Every case is a pure function of (seed, protocol, index), so any
case a run reports can be made again alone (`fuzz.py --seed S --only h1:INDEX`).

HTTP/1.1: a request from a few templates (GET with fields, bodies by Content-Length and
chunked with a trailer, HTTP/1.0 keep-alive, `Expect: 100-continue`, the application's own
500), mutated one to four times (byte flips; CR, LF, NUL, SP, HTAB, `:` or `;` inserted; a
range deleted or repeated; a field line repeated; a digit changed; a chunk-size line
rewritten; the end cut off), then a pipelined good request; sent in pieces split at random.
HTTP/2: a conversation made by h2 as a client (SETTINGS, requests with and without bodies,
PING, WINDOW_UPDATE, PRIORITY, RST_STREAM), mutated the same way after the 24-byte preface,
or with whole frames repeated, dropped, swapped or their header fields rewritten.
PROXY protocol: a v1 or v2 header (v2 with TLVs: authority, SSL with version and cipher,
NOOP, a CRC32C), mutated the same ways or with a v2 length or version/command byte rewritten,
then a good HTTP/1.1 request.
"""

from __future__ import annotations

import random
import re
import struct
from collections.abc import Callable

PIPELINED = b"GET /pipelined HTTP/1.1\r\nHost: fuzz\r\n\r\n"
_INSERTS = (b"\r", b"\n", b"\x00", b" ", b"\t", b"\r\n", b":", b";", b"\x7f", b"\xff", b",")
_BODY = b"name=value&GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def _h1_templates() -> list[bytes]:
    chunked = (b"POST /upload HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n"
               b"Trailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\n%x\r\n%s\r\n0\r\nX-Sum: 1\r\n\r\n"
               % (len(_BODY), _BODY))
    return [
        b"GET /case?q=1 HTTP/1.1\r\nHost: fuzz\r\nUser-Agent: fuzz/1\r\nAccept: */*\r\n"
        b"Cookie: a=b; c=d\r\n\r\n",
        b"POST /upload HTTP/1.1\r\nHost: fuzz\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY),
        chunked,
        b"GET /case HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"POST /upload HTTP/1.1\r\nHost: fuzz\r\nExpect: 100-continue\r\n"
        b"Content-Length: 5\r\n\r\nhello",
        b"GET /error HTTP/1.1\r\nHost: fuzz\r\n\r\n",
    ]


H1_TEMPLATES = _h1_templates()


def _flip(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + bytes((data[at] ^ (1 << rng.randrange(8)),)) + data[at + 1:]


def _insert(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.choice(_INSERTS) + data[at:]


def _delete(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randint(1, 8):]


def _repeat(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    piece = data[at:at + rng.randint(1, 40)]
    return data[:at] + piece * rng.randint(2, 3) + data[at:]


def _field_again(rng: random.Random, data: bytes) -> bytes:
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if len(lines) < 2:
        return data
    line = rng.choice(lines[1:])
    lines.insert(rng.randint(1, len(lines)), line)
    return b"\r\n".join(lines) + sep + body


def _digit(rng: random.Random, data: bytes) -> bytes:
    spots = [m.start() for m in re.finditer(rb"[0-9a-fA-F]", data)]
    if not spots:
        return data
    at = rng.choice(spots)
    return data[:at] + rng.choice(b"0123456789abcdefABCDEF-+ ").to_bytes(1, "big") + data[at + 1:]


def _chunk_line(rng: random.Random, data: bytes) -> bytes:
    lines = list(re.finditer(rb"\r\n([0-9a-fA-F]+)(;[^\r\n]*)?\r\n", data))
    if not lines:
        return _digit(rng, data)
    found = rng.choice(lines)
    size = found.group(1)
    new = rng.choice([size + b" ", b" " + size, b"0x" + size, size + b";", size + b"; a=b",
                      b"f" * rng.randint(1, 20), b"", size + b"\n", b"-" + size,
                      size + b";a=\"b\"", b"%x" % rng.randrange(1 << 20), size.upper()])
    return data[:found.start(1)] + new + data[found.end(1) + len(found.group(2) or b""):]


def _cut(rng: random.Random, data: bytes) -> bytes:
    return data[:rng.randrange(1, len(data))] if len(data) > 1 else data


MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [
    _flip, _insert, _delete, _repeat, _field_again, _digit, _chunk_line, _cut]


def h1_case(seed: int, index: int) -> tuple[bytes, list[int]]:
    """The bytes of HTTP/1.1 case `index` (mutated request, then the pipelined one) and the
    offsets at which to split them into separate sends."""
    rng = random.Random(f"{seed}:h1:{index}")
    data = rng.choice(H1_TEMPLATES)
    for _ in range(rng.randint(1, 4)):
        data = rng.choice(MUTATIONS)(rng, data) or data
    data += PIPELINED
    splits = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(0, 3))))
    return data, splits


PREFACE_BYTES = 24


def _h2_conversation(rng: random.Random) -> bytes:
    import h2.config
    import h2.connection

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({4: rng.choice([0, 1, 65535, 1 << 20])})
    for path, body in rng.sample([("/case", None), ("/upload", b"x" * rng.randint(1, 300)),
                                  ("/error", None), ("/case?q=%C3%A9", None),
                                  ("/upload", b"")], k=rng.randint(1, 3)):
        stream = conn.get_next_available_stream_id()
        headers = [(":method", "POST" if body is not None else "GET"), (":scheme", "http"),
                   (":authority", "fuzz"), (":path", path), ("user-agent", "fuzz/1")]
        if body:
            headers.append(("content-length", str(len(body))))
        conn.send_headers(stream, headers, end_stream=body is None)
        if body is not None:
            conn.send_data(stream, body, end_stream=True)
    conn.ping(b"12345678")
    conn.increment_flow_control_window(rng.randint(1, 1 << 16))
    data: bytes = conn.data_to_send()
    extra = [struct.pack(">I", 5)[1:] + b"\x02\x00" + struct.pack(">I", 3) + b"\x00" * 5,
             struct.pack(">I", 4)[1:] + b"\x03\x00" + struct.pack(">I", 1) + b"\x00\x00\x00\x08"]
    return data + b"".join(rng.sample(extra, k=rng.randint(0, 2)))


def _frames(data: bytes) -> list[bytes]:
    frames, at = [], 0
    while at + 9 <= len(data):
        length = int.from_bytes(data[at:at + 3], "big")
        frames.append(data[at:at + 9 + length])
        at += 9 + length
    return frames


def whole_frames(data: bytes) -> bool:
    """Do the frame lengths after the preface end exactly where the data ends? (If not, the
    server is still waiting for the rest of a frame and a PING sent after would be its body.)"""
    at = PREFACE_BYTES
    while at + 9 <= len(data):
        at += 9 + int.from_bytes(data[at:at + 3], "big")
    return at == len(data)


def _frame_level(rng: random.Random, frames: list[bytes]) -> list[bytes]:
    if not frames:
        return frames
    at = rng.randrange(len(frames))
    choice = rng.randrange(5)
    if choice == 0:
        return frames[:at] + [frames[at]] * rng.randint(2, 50) + frames[at + 1:]
    if choice == 1:
        return frames[:at] + frames[at + 1:]
    if choice == 2:
        other = rng.randrange(len(frames))
        frames[at], frames[other] = frames[other], frames[at]
        return frames
    head = bytearray(frames[at])
    field = rng.choice([(0, 3), (3, 4), (4, 5), (5, 9)])  # length, type, flags, stream id
    for spot in range(*field):
        head[spot] = rng.randrange(256) if choice == 3 else head[spot] ^ 0xFF
    return frames[:at] + [bytes(head)] + frames[at + 1:]


def h2_case(seed: int, index: int) -> tuple[bytes, list[int]]:
    """The bytes of HTTP/2 case `index`: the preface intact, then mutated frames."""
    rng = random.Random(f"{seed}:h2:{index}")
    data = _h2_conversation(rng)
    preface, rest = data[:PREFACE_BYTES], data[PREFACE_BYTES:]
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.4:
            rest = b"".join(_frame_level(rng, _frames(rest)))
        else:
            rest = rng.choice(MUTATIONS[:6])(rng, rest) if rest else rest
    data = preface + rest
    splits = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(0, 3))))
    return data, splits


# -- PROXY protocol ------------------------------------------------------------------------------

PROXY_REQUEST = b"GET /case HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n"
_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def _tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack(">H", len(value)) + value


def _proxy_header(rng: random.Random) -> bytes:
    port = rng.randrange(65536)
    choice = rng.randrange(6)
    if choice == 0:
        return b"PROXY TCP4 203.0.113.%d 10.0.0.1 %d 443\r\n" % (rng.randrange(256), port)
    if choice == 1:
        return b"PROXY TCP6 2001:db8::%x ::1 %d 443\r\n" % (rng.randrange(1 << 16), port)
    if choice == 2:
        return b"PROXY UNKNOWN\r\n"
    if choice == 3:  # LOCAL, a health check
        return _V2_SIGNATURE + b"\x20\x00\x00\x00"
    family, block = (0x11, bytes([203, 0, 113, rng.randrange(256), 10, 0, 0, 1])) \
        if choice == 4 else (0x21, bytes(15) + b"\x07" + bytes(15) + b"\x01")
    block += struct.pack(">HH", port, 443)
    tlvs = [_tlv(0x02, b"fuzz.example"), _tlv(0x04, bytes(rng.randrange(8))),
            _tlv(0x20, b"\x01\x00\x00\x00\x00" + _tlv(0x21, b"TLSv1.3")
                 + _tlv(0x23, b"TLS_AES_128_GCM_SHA256"))]
    block += b"".join(rng.sample(tlvs, k=rng.randint(0, 3)))
    if rng.random() < 0.3:
        block += _tlv(0x03, bytes(4))  # a CRC32C of zeros: wrong unless by chance
    return _V2_SIGNATURE + bytes([0x21, family]) + struct.pack(">H", len(block)) + block


def _v2_field(rng: random.Random, data: bytes) -> bytes:
    """Rewrite a v2 header's version/command, family or length byte (else mutate alike)."""
    if not data.startswith(_V2_SIGNATURE) or len(data) < 16:
        return _flip(rng, data)
    at = rng.choice([12, 13, 14, 15])
    return data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]


def proxy_case(seed: int, index: int) -> tuple[bytes, list[int]]:
    """The bytes of PROXY protocol case `index`: a header, mutated (or not: a third are
    sent whole, so the request after it is answered), then a request."""
    rng = random.Random(f"{seed}:proxy:{index}")
    data = _proxy_header(rng)
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        data = rng.choice([*MUTATIONS[:4], _cut, _v2_field])(rng, data) or data
    data += PROXY_REQUEST
    splits = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(0, 3))))
    return data, splits
