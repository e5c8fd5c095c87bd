# The PROXY protocol, v1 (text) and v2 (binary), as haproxy's proxy-protocol.txt defines it.
"""The header a TCP proxy (haproxy, stunnel, an AWS or GCP network load balancer) puts before
a connection's first byte to name the client it relays: bytes in, a ProxyInfo or a
ProxyProtocolError out. No socket, clock or logger: the server peeks at the connection and
offers the bytes; the reader says how many belong to the header, so it never takes the bytes
that follow (a TLS ClientHello that the ssl module must read itself, or an HTTP request).

Every bound is fixed: a v1 line is at most 107 bytes (the spec's worst case), a v2 header at
most 16 bytes plus `max_v2_payload` (addresses and TLVs). v2 TLVs are parsed (bounded by
that length); the SSL TLV gives the TLS version and cipher the client used with the proxy;
a CRC32C TLV is verified, as the spec requires of a receiver that knows it.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass

__all__ = ["V1_MAX_BYTES", "V2_MAX_PAYLOAD_BYTES", "V2_SIGNATURE", "ProxyHeaderReader",
           "ProxyInfo", "ProxyProtocolError", "ProxyTLS", "parse_header"]

V1_PREFIX = b"PROXY"
V1_MAX_BYTES = 107  # "PROXY UNKNOWN <ipv6> <ipv6> 65535 65535\r\n", the spec's worst case
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED_BYTES = 16  # signature, version and command, family and transport, length
# Addresses (216 bytes at most, AF_UNIX) and TLVs; the spec allows 65535, no sender needs it.
V2_MAX_PAYLOAD_BYTES = 4096

_LOCAL, _PROXY = 0x0, 0x1
# v2 family/transport bytes the spec lists: (family name, address block size, stream?)
_V2_FAMILIES: dict[int, tuple[str, int, bool]] = {
    0x00: ("UNSPEC", 0, False),
    0x11: ("TCP4", 12, True), 0x12: ("UDP4", 12, False),
    0x21: ("TCP6", 36, True), 0x22: ("UDP6", 36, False),
    0x31: ("UNIX", 216, True), 0x32: ("UNIX_DGRAM", 216, False),
}
_TLV_AUTHORITY, _TLV_CRC32C, _TLV_SSL = 0x02, 0x03, 0x20
_SSL_VERSION, _SSL_CN, _SSL_CIPHER = 0x21, 0x22, 0x23
_CLIENT_SSL = 0x01
_DIGITS = frozenset(b"0123456789")
_V1_BAD_BYTE = re.compile(rb"[^\x20-\x7e]")


class ProxyProtocolError(Exception):
    """The connection starts with a PROXY header that cannot be accepted. `reason` is short
    and fixed, for counting: malformed, unknown_command, too_long."""

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ProxyTLS:
    """What the v2 SSL TLV says of the client's connection to the proxy."""

    client_flags: int  # PP2_CLIENT_SSL (1), _CERT_CONN (2), _CERT_SESS (4)
    verify: int  # 0: a client certificate was presented and verified
    version: str | None  # "TLSv1.3"
    cipher: str | None  # "TLS_AES_128_GCM_SHA256"
    common_name: str | None  # of the client certificate

    @property
    def over_tls(self) -> bool:
        return bool(self.client_flags & _CLIENT_SSL)


@dataclass(frozen=True, slots=True)
class ProxyInfo:
    """One PROXY header. `family`: TCP4, TCP6, UNIX, or UNKNOWN (v1) / UNSPEC, UDP4, UDP6,
    UNIX_DGRAM (v2), for which the connection's own endpoints stand, as the spec says."""

    version: int  # 1 or 2
    command: str  # PROXY, or LOCAL (v2: the proxy's own connection, a health check)
    family: str
    source: str | None = None
    source_port: int | None = None
    destination: str | None = None
    destination_port: int | None = None
    tlvs: tuple[tuple[int, bytes], ...] = ()
    authority: str | None = None  # v2 PP2_TYPE_AUTHORITY (the client's SNI)
    tls: ProxyTLS | None = None

    @property
    def names_client(self) -> bool:
        """The header gives the client's IP address and port (else the socket's stand)."""
        return self.command == "PROXY" and self.family in ("TCP4", "TCP6")


# -- the incremental reader ------------------------------------------------------------------


class ProxyHeaderReader:
    """Reads one optional PROXY header at the start of a connection.

    The caller offers the unread bytes it can see (`receive`, typically a MSG_PEEK) and
    consumes exactly as many as `receive` returns. Then either `info` is set (the header is
    whole), or `absent` is (the connection does not start with one; the bytes taken so far,
    `held`, belong to what follows), or neither (more bytes are needed).
    """

    __slots__ = ("v1", "v2", "max_v2_payload", "held", "info", "absent")

    def __init__(self, *, v1: bool = True, v2: bool = True,
                 max_v2_payload: int = V2_MAX_PAYLOAD_BYTES) -> None:
        self.v1 = v1
        self.v2 = v2
        self.max_v2_payload = max_v2_payload
        self.held = b""
        self.info: ProxyInfo | None = None
        self.absent = False

    @property
    def done(self) -> bool:
        return self.info is not None or self.absent

    def room(self) -> int:
        """How many more bytes the header can have at most (what to peek at)."""
        if self.held.startswith(V2_SIGNATURE) and len(self.held) >= V2_FIXED_BYTES:
            length = V2_FIXED_BYTES + int.from_bytes(self.held[14:16], "big")
            return max(1, length - len(self.held))
        return max(1, max(V1_MAX_BYTES, V2_FIXED_BYTES) - len(self.held))

    def receive(self, data: bytes) -> int:
        """Offer the unread bytes; returns how many of them the header takes (consume
        exactly those). Raises ProxyProtocolError for a header that cannot be accepted."""
        if self.done:
            raise RuntimeError("the PROXY header has been read already")
        buffer = self.held + data
        outcome = parse_header(buffer, v1=self.v1, v2=self.v2,
                               max_v2_payload=self.max_v2_payload)
        if outcome is None:  # every byte so far belongs to the header
            self.held = buffer
            return len(data)
        if isinstance(outcome, _Absent):
            self.absent = True
            return 0
        info, length = outcome
        taken = length - len(self.held)
        self.held = buffer[:length]
        self.info = info
        return taken


class _Absent:
    __slots__ = ()


_ABSENT = _Absent()


def parse_header(buffer: bytes, *, v1: bool = True, v2: bool = True,
                 max_v2_payload: int = V2_MAX_PAYLOAD_BYTES,
                 ) -> tuple[ProxyInfo, int] | _Absent | None:
    """The start of a connection: (info, header length) when a whole header is there,
    `_ABSENT` when it does not start with one, None when more bytes are needed (then all of
    `buffer` belongs to the header). Raises ProxyProtocolError."""
    if not buffer:
        return None
    if v2 and V2_SIGNATURE.startswith(buffer[:12]):
        return _parse_v2(buffer, max_v2_payload) if len(buffer) >= 12 else None
    if v1 and V1_PREFIX.startswith(buffer[:5]):
        return _parse_v1(buffer) if len(buffer) >= 5 else None
    return _ABSENT


# -- v1 ----------------------------------------------------------------------------------------


def _parse_v1(buffer: bytes) -> tuple[ProxyInfo, int] | None:
    end = buffer.find(b"\r\n", 0, V1_MAX_BYTES)
    if end < 0:
        seen = buffer[:V1_MAX_BYTES]
        _check_v1_bytes(seen[:-1] if seen.endswith(b"\r") else seen)  # CR: LF may follow
        if len(buffer) >= V1_MAX_BYTES:
            raise ProxyProtocolError(f"PROXY v1 line longer than {V1_MAX_BYTES} bytes",
                                     "too_long")
        return None
    line = buffer[:end]
    _check_v1_bytes(line)
    parts = line.split(b" ")
    if len(parts) < 2 or parts[0] != V1_PREFIX:
        raise ProxyProtocolError(f"bad PROXY v1 line {_short(line)}")
    if parts[1] == b"UNKNOWN":  # the rest of the line is ignored, as the spec says
        return ProxyInfo(1, "PROXY", "UNKNOWN"), end + 2
    if len(parts) != 6 or parts[1] not in (b"TCP4", b"TCP6"):
        raise ProxyProtocolError(f"bad PROXY v1 line {_short(line)}")
    family = parts[1].decode("ascii")
    version = 4 if family == "TCP4" else 6
    source = _v1_address(parts[2], version)
    destination = _v1_address(parts[3], version)
    info = ProxyInfo(1, "PROXY", family, source, _v1_port(parts[4]), destination,
                     _v1_port(parts[5]))
    return info, end + 2


def _check_v1_bytes(line: bytes) -> None:
    """Printable US-ASCII only: a bare CR or LF never ends the line (the spec), NUL never."""
    if _V1_BAD_BYTE.search(line) is not None:
        raise ProxyProtocolError(f"PROXY v1 line with control bytes {_short(line)}")


def _v1_address(text: bytes, version: int) -> str:
    try:
        if b"%" in text:  # ip_address would take an IPv6 zone: not an address on the wire
            raise ValueError
        address = ipaddress.ip_address(text.decode("ascii"))
    except ValueError:
        raise ProxyProtocolError(f"bad address {_short(text)} in a PROXY v1 line") from None
    if address.version != version:
        raise ProxyProtocolError(f"address {_short(text)} is not IPv{version}")
    return str(address)


def _v1_port(text: bytes) -> int:
    # Digits only, no leading zero (the spec), at most 65535: int() alone would take "+1", "1_0"
    if not text or not set(text) <= _DIGITS or (len(text) > 1 and text[:1] == b"0") \
            or len(text) > 5 or int(text) > 65535:
        raise ProxyProtocolError(f"bad port {_short(text)} in a PROXY v1 line")
    return int(text)


# -- v2 ----------------------------------------------------------------------------------------


def _parse_v2(buffer: bytes, max_payload: int) -> tuple[ProxyInfo, int] | None:
    if len(buffer) < 13:
        return None
    version_command = buffer[12]
    if version_command >> 4 != 2:
        raise ProxyProtocolError(f"PROXY v2 header of version {version_command >> 4}")
    command = version_command & 0x0F
    if command not in (_LOCAL, _PROXY):
        raise ProxyProtocolError(f"PROXY v2 header with unknown command {command}",
                                 "unknown_command")
    if len(buffer) < V2_FIXED_BYTES:
        return None
    family_byte = buffer[13]
    length = int.from_bytes(buffer[14:16], "big")
    if length > max_payload:
        raise ProxyProtocolError(f"PROXY v2 header of {length} bytes, over the "
                                 f"{max_payload} allowed", "too_long")
    if len(buffer) < V2_FIXED_BYTES + length:
        return None
    total = V2_FIXED_BYTES + length
    header = buffer[:total]
    if command == _LOCAL:  # the proxy's own connection: the block is ignored, as told
        return ProxyInfo(2, "LOCAL", "UNSPEC"), total
    known = _V2_FAMILIES.get(family_byte)
    if known is None:
        raise ProxyProtocolError(f"PROXY v2 header with family/transport {family_byte:#04x}")
    family, address_bytes, stream = known
    if family == "UNSPEC":  # "the receiver should ignore address information": all of it
        return ProxyInfo(2, "PROXY", family), total
    if length < address_bytes:
        raise ProxyProtocolError(f"PROXY v2 {family} address block of {length} bytes")
    payload = header[V2_FIXED_BYTES:]
    tlvs, authority, tls = _tlvs(header, payload[address_bytes:])
    # Not a stream (UDP, or UNSPEC): no address we could use; the socket's endpoints stand.
    addresses = _v2_addresses(family, payload[:address_bytes]) if stream else _NO_ADDRESSES
    return ProxyInfo(2, "PROXY", family, *addresses, tlvs=tlvs, authority=authority,
                     tls=tls), total


_Addresses = tuple[str | None, int | None, str | None, int | None]
_NO_ADDRESSES: _Addresses = (None, None, None, None)


def _v2_addresses(family: str, block: bytes) -> _Addresses:
    """(source, its port, destination, its port) of a stream's address block."""
    if family == "UNIX":
        return _unix_path(block[:108]), None, _unix_path(block[108:216]), None
    size = 4 if family == "TCP4" else 16
    make = ipaddress.IPv4Address if size == 4 else ipaddress.IPv6Address
    source_port, destination_port = struct.unpack("!HH", block[2 * size:2 * size + 4])
    return (str(make(block[:size])), source_port, str(make(block[size:2 * size])),
            destination_port)


def _unix_path(raw: bytes) -> str:
    if raw[:1] == b"\x00" and raw.strip(b"\x00"):  # an abstract socket name
        return "@" + raw[1:].rstrip(b"\x00").decode("latin-1")
    return raw.split(b"\x00", 1)[0].decode("latin-1")


def _tlvs(header: bytes, block: bytes,
          ) -> tuple[tuple[tuple[int, bytes], ...], str | None, ProxyTLS | None]:
    """(every TLV, the authority, the SSL TLV's content); the CRC32C TLV checked."""
    found = _split_tlvs(block, "TLV")
    authority = tls = None
    block_at = len(header) - len(block)
    for kind, value_at, value in found:
        if kind == _TLV_AUTHORITY:
            authority = _utf8(value, "authority")
        elif kind == _TLV_SSL:
            tls = _ssl_tlv(value)
        elif kind == _TLV_CRC32C:
            _check_crc(header, block_at + value_at, value)
    return tuple((kind, value) for kind, _, value in found), authority, tls


def _split_tlvs(block: bytes, what: str) -> list[tuple[int, int, bytes]]:
    """(type, offset of the value in `block`, value) of each TLV."""
    found = []
    at = 0
    while at < len(block):
        if len(block) - at < 3:
            raise ProxyProtocolError(f"PROXY v2 {what} cut short")
        kind = block[at]
        end = at + 3 + int.from_bytes(block[at + 1:at + 3], "big")
        if end > len(block):
            raise ProxyProtocolError(f"PROXY v2 {what} {kind:#04x} runs past the header")
        found.append((kind, at + 3, block[at + 3:end]))
        at = end
    return found


def _ssl_tlv(value: bytes) -> ProxyTLS:
    if len(value) < 5:
        raise ProxyProtocolError("PROXY v2 SSL TLV shorter than 5 bytes")
    fields: dict[int, str] = {}
    for kind, _, sub in _split_tlvs(value[5:], "SSL sub-TLV"):
        if kind in (_SSL_VERSION, _SSL_CN, _SSL_CIPHER):
            fields[kind] = _utf8(sub, "SSL field")
    return ProxyTLS(client_flags=value[0], verify=int.from_bytes(value[1:5], "big"),
                    version=fields.get(_SSL_VERSION), cipher=fields.get(_SSL_CIPHER),
                    common_name=fields.get(_SSL_CN))


def _utf8(value: bytes, what: str) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise ProxyProtocolError(f"PROXY v2 {what} is not UTF-8") from None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise ProxyProtocolError(f"PROXY v2 {what} with control characters")
    return text


def _check_crc(header: bytes, at: int, value: bytes) -> None:
    if len(value) != 4:
        raise ProxyProtocolError("PROXY v2 CRC32C TLV not 4 bytes")
    zeroed = header[:at] + b"\x00\x00\x00\x00" + header[at + 4:]
    if crc32c(zeroed) != int.from_bytes(value, "big"):
        raise ProxyProtocolError("PROXY v2 header fails its CRC32C check")


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for index in range(256):
        crc = index
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli, RFC 4960 appendix B): headers are short, a table suffices."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _short(data: bytes) -> str:
    return repr(data[:48]) + ("..." if len(data) > 48 else "")
