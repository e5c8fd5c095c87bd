"""The WSGI side of a request (PEP 3333): environ, wsgi.input, start_response checks.

The HTTP/1.1 driver (server/http1.py) owns the socket and the engine; this module turns an
engine Request into an environ, reads the body for the application through a `BodySource`
(the driver), validates what the application passes to start_response, and wraps files.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any, Protocol
from urllib.parse import unquote_to_bytes

from ..protocol.caches import remember

# Headers a proxy sets. From peers outside forwarded_allow_ips they are removed from the
# environ entirely, so an application (or ProxyFix) can never trust a forged one.
FORWARDED_HEADERS: frozenset[bytes] = frozenset(
    {
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-protocol",
        b"x-forwarded-scheme",
        b"x-forwarded-ssl",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-forwarded-server",
        b"x-real-ip",
        b"x-scheme",
        b"x-url-scheme",
        b"x-script-name",
        b"script-name",
        b"front-end-https",
    }
)
# Hop-by-hop fields (RFC 9110 7.6.1, and the old names proxies still send): they describe one
# connection, which is the server's, so PEP 3333 forbids them to applications. Frameworks set
# them anyway; as gunicorn does, they are dropped (a warning once per name) rather than failing
# the request. `Connection: close` is the exception on HTTP/1.1: the server honours it.
HOP_BY_HOP: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_HOP = b""  # _HEADER_NAMES' entry for a hop-by-hop name: not sent
_WARNED_HOP_NAMES: set[str] = set()  # lower-cased names already warned about (bounded: HOP_BY_HOP)
_WARNED_HOP_LOCK = threading.Lock()
_DROP = ""
_SPECIAL_KEYS = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}
_ENVIRON_KEYS: dict[bytes, str] = {}  # header name -> environ key; a bounded cache
_ENVIRON_KEYS_MAX = 1024
_STATUS_RE = re.compile(r"([2-5][0-9][0-9]) ([^\x00-\x08\x0a-\x1f\x7f]*)\Z")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Control bytes other than HTAB, checked after SP/HTAB are stripped from both ends: CR, LF and
# NUL in a value would let whoever supplied it inject headers or split the response.
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_NAMES: dict[str, bytes] = {}  # validated name -> its bytes; bounded
_HEADER_NAMES_MAX = 1024
# (name, value) str pairs already checked -> their encoded form: most responses repeat the
# same few headers. Bounded in count and value size, so it cannot grow with hostile input.
_VALID_PAIRS: dict[tuple[str, str], tuple[bytes, bytes]] = {}
_VALID_PAIRS_MAX = 4096
_VALID_PAIR_VALUE_MAX = 64
_STATUSES: dict[str, tuple[int, bytes]] = {}  # status line -> (code, reason); bounded
_STATUSES_MAX = 512
# request-target -> (path, query, raw) as environ strings, before root_path is taken off:
# most traffic repeats a few targets. Cleared when full, so it follows the traffic; short
# targets only, so it stays small whatever clients send.
_TARGETS: dict[bytes, tuple[str, str, str]] = {}
_TARGETS_MAX = 1024
_TARGET_CACHE_MAX_BYTES = 256
_VERSIONS = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0", b"2": "HTTP/2"}


class TrustedProxies:
    """The forwarded_allow_ips setting: "*", addresses and CIDR networks."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.everyone = False
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._known: dict[str, bool] = {}
        for entry in entries:
            entry = entry.strip()
            if entry == "*":
                self.everyone = True
            elif entry:
                self.networks.append(ipaddress.ip_network(entry, strict=False))

    def trusts(self, peer_host: str | None) -> bool:
        """Unix-socket peers (no address) are local, so trusted, as gunicorn does."""
        if self.everyone or peer_host is None:
            return True
        known = self._known.get(peer_host)
        if known is None:
            known = self._check(peer_host)
            if len(self._known) < 4096:  # bounded: clients cannot grow it without limit
                self._known[peer_host] = known
        return known

    def _check(self, peer_host: str) -> bool:
        try:
            address = ipaddress.ip_address(peer_host.partition("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def environ_key(name: bytes) -> str:
    """`HTTP_X_THING` for b"x-thing"; "" (drop) for names with "_" (they would collide)."""
    key = _ENVIRON_KEYS.get(name)
    if key is not None:
        return key
    if b"_" in name:
        key = _DROP
    else:
        key = _SPECIAL_KEYS.get(name) or "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
    if len(_ENVIRON_KEYS) < _ENVIRON_KEYS_MAX:
        _ENVIRON_KEYS[name] = key
    return key


def build_environ(
    base: dict[str, Any],
    method: bytes,
    target: bytes,
    http_version: bytes,
    headers: Iterable[tuple[bytes, bytes]],
    root_path: str,
    trusted_proxy: bool,
) -> dict[str, Any]:
    """A fresh environ for one request, from a per-connection `base` holding the constants."""
    environ = base.copy()
    split = _TARGETS.get(target)
    if split is None:
        split = split_target(target)
    path_info = split[0]
    if root_path and (path_info == root_path or path_info.startswith(root_path + "/")):
        path_info = path_info[len(root_path) :]
    environ["REQUEST_METHOD"] = method.decode("latin-1")
    environ["PATH_INFO"] = path_info
    environ["QUERY_STRING"] = split[1]
    environ["RAW_URI"] = split[2]
    environ["SERVER_PROTOCOL"] = _VERSIONS.get(http_version) or (
        "HTTP/" + http_version.decode("latin-1")
    )
    forwarded = False
    known_keys = _ENVIRON_KEYS
    for name, value in headers:
        key = known_keys.get(name)
        if key is None:
            key = environ_key(name)
        if not key:
            continue
        if name in FORWARDED_HEADERS:
            if not trusted_proxy:
                continue
            forwarded = True
        text = value.decode("latin-1")
        if key in environ:
            environ[key] = environ[key] + ", " + text
        else:
            environ[key] = text
    if forwarded:
        scheme = forwarded_scheme(environ)
        if scheme:
            environ["wsgi.url_scheme"] = scheme
    return environ


def split_target(target: bytes) -> tuple[str, str, str]:
    """(PATH_INFO before root_path is removed, QUERY_STRING, RAW_URI) of a request-target:
    the path percent-decoded, then latin-1, as PEP 3333 says."""
    path, _, query = target.partition(b"?")
    if path[:1] != b"/" and b"://" in path:  # absolute-form: keep only the path
        path = b"/" + path.split(b"://", 1)[1].partition(b"/")[2]
    if b"%" in path:
        path = unquote_to_bytes(path)
    split = (path.decode("latin-1"), query.decode("latin-1"), target.decode("latin-1"))
    if len(target) <= _TARGET_CACHE_MAX_BYTES:
        remember(_TARGETS, target, split, _TARGETS_MAX)
    return split


def forwarded_scheme(environ: dict[str, Any]) -> str | None:
    """The scheme a trusted proxy says the client used, if it says one we know."""
    proto = environ.get("HTTP_X_FORWARDED_PROTO")
    if proto:
        proto = proto.split(",", 1)[0].strip().lower()
        return proto if proto in ("http", "https") else None
    forwarded = environ.get("HTTP_FORWARDED")
    if forwarded:
        for pair in forwarded.split(",", 1)[0].split(";"):
            key, _, value = pair.partition("=")
            if key.strip().lower() == "proto":
                value = value.strip().strip('"').lower()
                return value if value in ("http", "https") else None
    if environ.get("HTTP_X_FORWARDED_SSL", "").lower() == "on":
        return "https"
    return None


def check_start_response(exc_info: Any, head_sent: bool, started: bool) -> None:
    """PEP 3333's rules for calling start_response: with `exc_info` once the head has gone,
    re-raise the application's error (the response cannot be replaced any more); without
    it, only once. Callers drop their own `exc_info` reference afterwards, as here."""
    if exc_info is not None:
        try:
            if head_sent:
                raise exc_info[1].with_traceback(exc_info[2])
        finally:
            exc_info = None
    elif started:
        raise AssertionError("start_response() called again without exc_info")


def parse_status(status: object) -> tuple[int, bytes]:
    """`"200 OK"` -> (200, b"OK"); ValueError/TypeError for anything PEP 3333 forbids."""
    known = _STATUSES.get(status) if type(status) is str else None
    if known is not None:
        return known
    if type(status) is not str:
        raise TypeError(f"start_response: status must be str, got {type(status).__name__}")
    match = _STATUS_RE.match(status)
    if match is None:
        raise ValueError(f"start_response: bad status {status[:80]!r} (expected 'NNN reason')")
    parsed = int(match.group(1)), match.group(2).encode("latin-1")
    if len(_STATUSES) < _STATUSES_MAX:
        _STATUSES[status] = parsed
    return parsed


# The response head an application may send (names, values, separators): as much as a
# request head may take (limit_request_head_size's default), far above what any client needs.
RESPONSE_HEAD_MAX_BYTES = 65536
# The size is summed only when it could matter: cached pairs are short (name and value each
# at most _VALID_PAIR_VALUE_MAX), so a head of few cached fields cannot reach the bound and
# pays nothing on the hot path.
_SIZE_CHECK_FROM_BYTES = 4096
_SIZE_CHECK_FROM_FIELDS = 64


def encode_headers(headers: object,
                   error_log: logging.Logger) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Check start_response headers: (the (name, value) bytes to send, whether the
    application asked for `Connection: close`). The one header policy of both protocols.

    Values lose surrounding SP/HTAB (Django's Set-Cookie starts with a space), as gunicorn
    does; any other control byte left in a value, a name that is not a token, or a non-str
    raises (a 500). Hop-by-hop fields are dropped with one warning per name and process.
    Names keep the application's case: HTTP/1.1 sends them as written (as h11, gunicorn and
    waitress do); HTTP/2 lower-cases them, as RFC 9113 requires. Compare names lower-cased.
    """
    if type(headers) is not list and not isinstance(headers, (list, tuple)):
        raise TypeError(f"start_response: headers must be a list, got {type(headers).__name__}")
    encoded = []
    close = False
    unknown_bytes = 0  # in pairs not cached (cached ones are short)
    for item in headers:
        known = _VALID_PAIRS.get(item) if type(item) is tuple else None
        if known is not None:
            encoded.append(known)
            continue
        if type(item) is not tuple or len(item) != 2:
            raise TypeError(f"start_response: header {item!r} is not a (name, value) tuple")
        name, value = item
        name_bytes = _HEADER_NAMES.get(name) if type(name) is str else None
        if name_bytes is None:
            name_bytes = _check_name(name)
        value_bytes = _check_value(name, value)
        if not name_bytes:  # _HOP
            close = _hop_by_hop(name, value_bytes.decode("latin-1"), error_log) or close
            continue
        pair = (name_bytes, value_bytes)
        encoded.append(pair)
        unknown_bytes += len(name_bytes) + len(value_bytes)
        if (len(value) <= _VALID_PAIR_VALUE_MAX and len(name) <= _VALID_PAIR_VALUE_MAX
                and len(_VALID_PAIRS) < _VALID_PAIRS_MAX):
            _VALID_PAIRS[item] = pair
    if unknown_bytes > _SIZE_CHECK_FROM_BYTES or len(encoded) > _SIZE_CHECK_FROM_FIELDS:
        _check_head_size(encoded)
    return encoded, close


def _check_head_size(encoded: list[tuple[bytes, bytes]]) -> None:
    """A response head over RESPONSE_HEAD_MAX_BYTES is the application's fault (a 500): no
    client reads one (HPACK would also spend seconds encoding a megabyte of it)."""
    size = sum(len(name) + len(value) + 4 for name, value in encoded)
    if size > RESPONSE_HEAD_MAX_BYTES:
        raise ValueError(f"start_response: the response headers take {size} bytes, over "
                         f"the {RESPONSE_HEAD_MAX_BYTES} allowed")


def _check_name(name: object) -> bytes:
    """The name's bytes, or _HOP for a hop-by-hop name; raises unless a str token."""
    if type(name) is not str:
        raise TypeError(f"start_response: header name {name!r} must be str")
    if _TOKEN_RE.match(name) is None:
        raise ValueError(f"start_response: bad header name {name[:80]!r}")
    name_bytes = _HOP if name.lower() in HOP_BY_HOP else name.encode("ascii")
    if len(_HEADER_NAMES) < _HEADER_NAMES_MAX:
        _HEADER_NAMES[name] = name_bytes
    return name_bytes


def _check_value(name: str, value: object) -> bytes:
    """The value's bytes without surrounding SP/HTAB; raises on control bytes, non-latin-1."""
    if type(value) is not str:
        raise TypeError(f"start_response: value of {name!r} must be str, got "
                        f"{type(value).__name__}")
    value = value.strip(" \t")
    if _BAD_VALUE_RE.search(value):
        raise ValueError(f"start_response: value of {name!r} has control characters "
                         "(CR, LF, NUL, ...): refused, as header injection")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"start_response: value of {name!r} is not latin-1") from None


def _hop_by_hop(name: str, value: str, error_log: logging.Logger) -> bool:
    """Drop one hop-by-hop field; True when it is `Connection: close`, which HTTP/1.1
    honours by closing after the response (HTTP/2 has no use for it)."""
    lowered = name.lower()
    if lowered != "connection":
        _warn_dropped(lowered, name, value, error_log)
        return False
    tokens = {token.strip(" \t").lower() for token in value.split(",")}
    close = "close" in tokens
    tokens -= {"close", ""}
    if tokens:  # keep-alive, upgrade, names of other fields: the server decides those
        _warn_dropped(lowered, name, value, error_log)
    return close


def _warn_dropped(lowered: str, name: str, value: str, error_log: logging.Logger) -> None:
    with _WARNED_HOP_LOCK:
        if lowered in _WARNED_HOP_NAMES:
            return
        _WARNED_HOP_NAMES.add(lowered)
    why = ("the server frames the body itself" if lowered == "transfer-encoding"
           else "the connection is the server's")
    error_log.warning("the application set the hop-by-hop header %s: %.80r; dropped (%s), "
                      "and from now on without a warning", name, value, why)


class BodySource(Protocol):
    def read_body_chunk(self) -> bytes | None: ...


class InputStream:
    """wsgi.input: the request body as the application reads it, never all held at once.

    The pieces are kept as they came, with an offset into the first: a read copies only the
    bytes it returns (a piece that is exactly what was asked for is returned as it is), never
    what stays behind. Joining what was held with the next piece and slicing both ends made
    three copies per read of an upload (up to two pieces' worth each)."""

    __slots__ = ("_source", "_pieces", "_at", "_held", "_done", "received")

    def __init__(self, source: BodySource) -> None:
        self._source = source
        self._pieces: deque[bytes] = deque()
        self._at = 0  # how much of the first piece was read
        self._held = 0  # bytes held and not yet read
        self._done = False
        self.received = 0  # body bytes taken from the source (the request body metric)

    def _fill(self) -> bool:
        """Hold the next chunk of the body; False at its end."""
        while not self._done:
            chunk = self._source.read_body_chunk()
            if chunk is None:
                self._done = True
                return False
            if chunk:
                self.received += len(chunk)
                self._pieces.append(chunk)
                self._held += len(chunk)
                return True
        return False

    def _take(self, count: int) -> bytes:
        """The next `count` bytes held (at most all of them)."""
        if count <= 0:
            return b""
        pieces = self._pieces
        first, at = pieces[0], self._at
        self._held -= count
        if len(first) - at > count:  # inside the first piece
            self._at = at + count
            return first[at:at + count]
        if not at and len(first) == count:  # the first piece, whole
            pieces.popleft()
            return first
        parts: list[bytes | memoryview] = []
        while count:
            first = pieces[0]
            left = len(first) - at
            if left <= count:
                parts.append(memoryview(first)[at:] if at else first)
                pieces.popleft()
                count -= left
                at = 0
            else:
                parts.append(memoryview(first)[at:at + count])
                at += count
                count = 0
        self._at = at
        return b"".join(parts)

    def _find_newline(self, start: int) -> int:
        """Where the first newline at or after `start` is in what is held, or -1."""
        begins = 0  # where the current piece's unread bytes begin, in what is held
        at = self._at
        for piece in self._pieces:
            length = len(piece) - at
            if begins + length > start:
                found = piece.find(b"\n", at + max(0, start - begins))
                if found >= 0:
                    return begins + found - at
            begins += length
            at = 0
        return -1

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(self._held)
        while self._held < size and self._fill():
            pass
        return self._take(min(size, self._held))

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None else size
        searched = 0
        while True:
            end = self._find_newline(searched)
            if end >= 0:
                cut = end + 1
                break
            if 0 <= limit <= self._held:
                cut = limit
                break
            searched = self._held
            if not self._fill():
                cut = self._held
                break
        if 0 <= limit < cut:
            cut = limit
        return self._take(cut)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class FileWrapper:
    """wsgi.file_wrapper: the driver sends regular files with os.sendfile when it can."""

    def __init__(self, filelike: IO[bytes], blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while True:
            block = read(self.blksize)
            if not block:
                return
            yield block


def header_value(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None
