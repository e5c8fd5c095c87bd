"""The PROXY protocol parser (protocol/proxy.py): v1 and v2 headers as haproxy's
proxy-protocol.txt defines them, what is refused and why, and the properties the server
relies on: any chunking gives the same result, the reader never takes a byte past the
header, and any bytes either parse or raise ProxyProtocolError."""

from __future__ import annotations

import ipaddress
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from treadle.protocol.proxy import (
    V1_MAX_BYTES,
    V2_SIGNATURE,
    ProxyHeaderReader,
    ProxyInfo,
    ProxyProtocolError,
    crc32c,
)

settings.register_profile(
    "proxy", max_examples=int(os.environ.get("PROTOCOL_EXAMPLES", "200")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = settings.get_profile("proxy")
AFTER = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def v2(command: int = 1, family: int = 0x11, block: bytes = b"", version: int = 2,
       length: int | None = None) -> bytes:
    size = len(block) if length is None else length
    return V2_SIGNATURE + bytes([version << 4 | command, family]) + struct.pack("!H", size) \
        + block


def inet4(source: str = "203.0.113.7", destination: str = "10.0.0.1", ports: tuple[int, int]
          = (5555, 443)) -> bytes:
    return (ipaddress.IPv4Address(source).packed + ipaddress.IPv4Address(destination).packed
            + struct.pack("!HH", *ports))


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def read(data: bytes, **modes: bool) -> tuple[ProxyInfo | None, int, ProxyHeaderReader]:
    """Offer `data` whole: (info, bytes taken, the reader)."""
    reader = ProxyHeaderReader(**modes)
    taken = reader.receive(data)
    return reader.info, taken, reader


def refused(data: bytes, **modes: bool) -> ProxyProtocolError:
    with pytest.raises(ProxyProtocolError) as caught:
        read(data, **modes)
    return caught.value


# -- v1 --------------------------------------------------------------------------------------


def test_v1_tcp4_and_tcp6_name_the_client_and_take_only_the_line() -> None:
    line = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n"
    info, taken, _ = read(line + AFTER)
    assert taken == len(line)
    assert info == ProxyInfo(1, "PROXY", "TCP4", "203.0.113.7", 5555, "10.0.0.1", 443)
    assert info.names_client
    line = b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\n"
    info, taken, _ = read(line + AFTER)
    assert (taken, info.source, info.source_port, info.destination_port) == (
        len(line), "2001:db8::1", 65535, 0)


@pytest.mark.parametrize("line", [b"PROXY UNKNOWN\r\n",
                                  b"PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n",
                                  b"PROXY UNKNOWN whatever the sender says\r\n"])
def test_v1_unknown_keeps_the_socket_peer(line: bytes) -> None:
    info, taken, _ = read(line + AFTER)
    assert taken == len(line)
    assert info is not None and info.family == "UNKNOWN" and not info.names_client


@pytest.mark.parametrize("line", [
    b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\n",  # bare LF
    b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\rX\r\n",  # bare CR
    b"PROXY TCP4 203.0.113.7 10.0.0.1 5555\r\n",  # a field missing
    b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443 1\r\n",  # one too many
    b"PROXY TCP4  203.0.113.7 10.0.0.1 5555 443\r\n",  # two spaces
    b"PROXY TCP5 203.0.113.7 10.0.0.1 5555 443\r\n",
    b"PROXY tcp4 203.0.113.7 10.0.0.1 5555 443\r\n",
    b"PROXYTCP4 203.0.113.7 10.0.0.1 5555 443\r\n",
    b"PROXY TCP4 203.0.113.07 10.0.0.1 5555 443\r\n",  # a heading zero (octal?)
    b"PROXY TCP4 2001:db8::1 10.0.0.1 5555 443\r\n",  # not the family's address
    b"PROXY TCP6 203.0.113.7 ::1 5555 443\r\n",
    b"PROXY TCP6 fe80::1%eth0 ::1 5555 443\r\n",  # a zone is not an address on the wire
    b"PROXY TCP4 203.0.113.7 10.0.0.1 05555 443\r\n",  # a heading zero
    b"PROXY TCP4 203.0.113.7 10.0.0.1 +555 443\r\n",
    b"PROXY TCP4 203.0.113.7 10.0.0.1 5_55 443\r\n",
    b"PROXY TCP4 203.0.113.7 10.0.0.1 65536 443\r\n",
    b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 -1\r\n",
    b"PROXY TCP4 203.0.113.7\x00 10.0.0.1 5555 443\r\n",
    b"PROXY TCP4 203.0.113.\xb7 10.0.0.1 5555 443\r\n",
    b"PROXY \r\n",
])
def test_v1_lines_that_do_not_match_the_spec_are_refused(line: bytes) -> None:
    assert refused(line + AFTER).reason == "malformed"


def test_v1_line_without_crlf_in_107_bytes_is_too_long() -> None:
    assert refused(b"PROXY UNKNOWN " + b"a" * V1_MAX_BYTES).reason == "too_long"
    info, _, _ = read(b"PROXY UNKNOWN " + b"a" * (V1_MAX_BYTES - 16) + b"\r\n")
    assert info is not None  # 107 bytes exactly, CRLF included


def test_a_bare_lf_is_refused_before_the_line_is_whole() -> None:
    assert refused(b"PROXY TCP4 1.2.3.4\n").reason == "malformed"


# -- v2 --------------------------------------------------------------------------------------


def test_v2_tcp4_tcp6_and_unix() -> None:
    header = v2(block=inet4())
    info, taken, _ = read(header + AFTER)
    assert taken == len(header)
    assert info == ProxyInfo(2, "PROXY", "TCP4", "203.0.113.7", 5555, "10.0.0.1", 443)
    block = (ipaddress.IPv6Address("2001:db8::7").packed + ipaddress.IPv6Address("::1").packed
             + struct.pack("!HH", 1, 2))
    info, _, _ = read(v2(family=0x21, block=block))
    assert (info.family, info.source, info.destination, info.names_client) == (
        "TCP6", "2001:db8::7", "::1", True)
    paths = b"/run/client.sock".ljust(108, b"\x00") + b"\x00abstract".ljust(108, b"\x00")
    info, _, _ = read(v2(family=0x31, block=paths))
    assert (info.family, info.source, info.destination, info.names_client) == (
        "UNIX", "/run/client.sock", "@abstract", False)


def test_v2_local_and_unspec_keep_the_socket_peer_and_skip_the_block() -> None:
    header = v2(command=0, family=0x11, block=inet4())  # LOCAL: addresses ignored
    info, taken, _ = read(header + AFTER)
    assert taken == len(header)
    assert (info.command, info.family, info.source, info.names_client) == (
        "LOCAL", "UNSPEC", None, False)
    info, _, _ = read(v2(family=0x00, block=b"\x01\x02"))
    assert (info.command, info.family, info.names_client) == ("PROXY", "UNSPEC", False)
    info, _, _ = read(v2(family=0x12, block=inet4()))  # UDP: the socket's endpoints stand
    assert (info.family, info.source, info.names_client) == ("UDP4", None, False)


@pytest.mark.parametrize(("header", "reason"), [
    (v2(command=2, block=inet4()), "unknown_command"),
    (v2(command=0xF, block=inet4()), "unknown_command"),
    (v2(version=1, block=inet4()), "malformed"),
    (v2(version=3, block=inet4()), "malformed"),
    (v2(family=0x41, block=inet4()), "malformed"),
    (v2(family=0x13, block=inet4()), "malformed"),
    (v2(family=0x10, block=inet4()), "malformed"),
    (v2(family=0x11, block=inet4()[:11]), "malformed"),  # address block cut short
    (v2(family=0x21, block=inet4()), "malformed"),
    (v2(block=inet4() + b"\x04\x00"), "malformed"),  # a TLV cut short
    (v2(block=inet4() + b"\x04\x00\x05abc"), "malformed"),  # runs past the header
    (v2(block=inet4(), length=4097), "too_long"),
])
def test_v2_headers_that_are_refused(header: bytes, reason: str) -> None:
    assert refused(header + b"\x00" * 8).reason == reason


def test_v2_length_over_the_limit_is_refused_before_its_bytes_arrive() -> None:
    reader = ProxyHeaderReader(max_v2_payload=512)
    with pytest.raises(ProxyProtocolError) as caught:
        reader.receive(v2(block=b"", length=513))
    assert caught.value.reason == "too_long"


def test_v2_tlvs_authority_and_ssl_version_and_cipher() -> None:
    ssl_value = (bytes([0x01]) + struct.pack("!I", 0) + tlv(0x21, b"TLSv1.3")
                 + tlv(0x23, b"TLS_AES_128_GCM_SHA256") + tlv(0x22, b"client.example"))
    header = v2(block=inet4() + tlv(0x02, b"shop.example") + tlv(0x04, b"\x00" * 3)
                + tlv(0x20, ssl_value))
    info, taken, _ = read(header + AFTER)
    assert taken == len(header)
    assert info.authority == "shop.example"
    assert info.tls is not None and info.tls.over_tls
    assert (info.tls.version, info.tls.cipher, info.tls.common_name, info.tls.verify) == (
        "TLSv1.3", "TLS_AES_128_GCM_SHA256", "client.example", 0)
    assert [kind for kind, _ in info.tlvs] == [0x02, 0x04, 0x20]
    assert refused(v2(block=inet4() + tlv(0x20, b"\x01\x00"))).reason == "malformed"
    assert refused(v2(block=inet4() + tlv(0x02, b"\xff\xfe"))).reason == "malformed"
    bad_sub = bytes([1]) + b"\x00" * 4 + b"\x21\x00\x09TLS"
    assert refused(v2(block=inet4() + tlv(0x20, bad_sub))).reason == "malformed"


def test_crc32c_is_checked() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    unsigned = v2(block=inet4() + tlv(0x03, b"\x00" * 4))
    signed = unsigned[:-4] + struct.pack("!I", crc32c(unsigned))
    info, _, _ = read(signed)
    assert info is not None and info.source == "203.0.113.7"
    wrong = unsigned[:-4] + struct.pack("!I", crc32c(unsigned) ^ 1)
    assert refused(wrong).reason == "malformed"


# -- detection and the reader ----------------------------------------------------------------


@pytest.mark.parametrize("start", [b"GET / HTTP/1.1\r\n", b"PROPFIND / HTTP/1.1\r\n",
                                   b"PRI * HTTP/2.0\r\n", b"\r\nGET / HTTP/1.1\r\n",
                                   b"\x16\x03\x01\x02\x00\x01"])
def test_anything_else_is_absent_and_the_bytes_taken_are_handed_back(start: bytes) -> None:
    reader = ProxyHeaderReader()
    held = b""
    for at in range(len(start)):  # byte by byte, as a slow client sends it
        taken = reader.receive(start[at:at + 1])
        held += start[at:at + taken]
        if reader.done:
            break
    assert reader.absent and reader.info is None
    assert reader.held == held and start.startswith(held)


def test_modes_look_only_for_their_version() -> None:
    assert read(b"PROXY UNKNOWN\r\n", v1=False)[2].absent
    assert read(v2(block=inet4()), v2=False)[2].absent
    assert read(b"PROXY UNKNOWN\r\n", v2=False)[0] is not None


def test_the_reader_reads_one_header_only() -> None:
    reader = ProxyHeaderReader()
    reader.receive(b"PROXY UNKNOWN\r\n")
    with pytest.raises(RuntimeError):
        reader.receive(b"PROXY UNKNOWN\r\n")


# -- properties ------------------------------------------------------------------------------


def feed(data: bytes, cuts: list[int]) -> tuple[str, object, bytes]:
    """Deliver `data` in pieces as a socket would (unread bytes stay for the next peek):
    (outcome, info or reason, what is left for the next layer: held bytes + unread)."""
    reader = ProxyHeaderReader()
    unread = b""
    consumed = 0  # what the reader took from the "socket"
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    try:
        for piece in pieces:
            unread += piece
            taken = reader.receive(unread)
            assert 0 <= taken <= len(unread)
            unread = unread[taken:]
            consumed += taken
            if reader.done:
                break
    except ProxyProtocolError as exc:
        return "error", exc.reason, b""
    assert consumed == len(reader.held)  # never a byte past the header (or its prefix)
    rest = data[len(reader.held):]
    if reader.absent:
        assert data.startswith(reader.held)
        return "absent", None, reader.held + rest
    if reader.info is not None:
        return "info", reader.info, rest
    return "more", None, b""


def headers() -> st.SearchStrategy[bytes]:
    ports = st.integers(0, 65535)
    v4 = st.ip_addresses(v=4).map(str)
    v6 = st.ip_addresses(v=6).map(str)
    v1_tcp4 = st.builds(lambda s, d, p, q: f"PROXY TCP4 {s} {d} {p} {q}\r\n".encode(),
                        v4, v4, ports, ports)
    v1_tcp6 = st.builds(lambda s, d, p, q: f"PROXY TCP6 {s} {d} {p} {q}\r\n".encode(),
                        v6, v6, ports, ports)
    v2_tcp4 = st.builds(lambda s, d, p, q, extra: v2(block=inet4(s, d, (p, q)) + extra),
                        v4, v4, ports, ports,
                        st.lists(st.builds(tlv, st.sampled_from([0x04, 0x05, 0xE0]),
                                           st.binary(max_size=20)), max_size=3).map(b"".join))
    return st.one_of(v1_tcp4, v1_tcp6, v2_tcp4, st.just(b"PROXY UNKNOWN\r\n"),
                     st.just(v2(command=0)))


def cuts_of(data: bytes) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(1, max(1, len(data) - 1)), max_size=8).map(
        lambda cuts: sorted(set(c for c in cuts if 0 < c < len(data))))


@PROFILE
@given(st.data(), headers(), st.binary(max_size=40))
def test_valid_headers_parse_alike_in_any_chunking_and_leave_what_follows(
        data: st.DataObject, header: bytes, after: bytes) -> None:
    whole = feed(header + AFTER + after, [])
    assert whole[0] == "info" and whole[2] == AFTER + after
    cuts = data.draw(cuts_of(header + AFTER + after))
    assert feed(header + AFTER + after, cuts) == whole


@PROFILE
@given(st.data(), st.one_of(st.binary(max_size=300),
                            st.binary(max_size=120).map(lambda b: b"PROXY " + b),
                            st.binary(max_size=300).map(lambda b: V2_SIGNATURE + b)))
def test_any_bytes_parse_or_raise_the_protocol_error_alike_in_any_chunking(
        data: st.DataObject, raw: bytes) -> None:
    whole = feed(raw, [])  # anything but ProxyProtocolError escapes and fails the test
    cuts = data.draw(cuts_of(raw))
    chunked = feed(raw, cuts)
    if whole[0] == "more":  # a prefix: chunking cannot make it whole
        assert chunked[0] == "more"
    else:
        assert chunked == whole
