# Validators: pure functions from a raw value (a TOML value, or the text of an environment
# variable or a flag) to the typed, normalised value a Config holds. One validator serves all
# three sources, so "TREADLE_THREADS=4", "threads = 4" and "--threads 4" cannot disagree.
# No I/O here: whether a file exists or a user is known is check_paths' business.
from __future__ import annotations

import ast
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from .errors import Invalid, show

__all__ = [
    "Validator",
    "access_log_format",
    "bind_address",
    "boolean",
    "cert_reqs",
    "choice",
    "ciphers",
    "h2_cleartext",
    "http_protocol",
    "integer",
    "ip_or_network",
    "log_config_dict",
    "log_target",
    "optional",
    "path",
    "raw_env_item",
    "request_id_header",
    "root_path",
    "seconds",
    "string_list",
    "text",
    "tls_version",
    "umask",
    "user_or_group",
    "wsgi_app",
]


@dataclass(frozen=True)
class Validator:
    """Turns a raw value into a setting's typed value, or raises Invalid.

    ``expected`` completes "expected ..." in error messages and names the type in the docs.
    """

    expected: str
    parse: Callable[[object], object]

    def __call__(self, value: object) -> object:
        return self.parse(value)


_INT_TEXT = re.compile(r"-?[0-9]+")
_FLOAT_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _number_text(number: float) -> str:
    return str(number) if isinstance(number, int) else f"{number:g}"  # 2147483647 in full


def _range_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {_number_text(minimum)} to {_number_text(maximum)}"
    if minimum is not None:
        return f" >= {_number_text(minimum)}"
    return ""


def integer(minimum: int | None = None, maximum: int | None = None) -> Validator:
    """A whole number; text must be plain digits (no "+", "_", spaces or "0x" tricks)."""
    expected = "an integer" + _range_text(minimum, maximum)

    def parse(value: object) -> object:
        if isinstance(value, str) and _INT_TEXT.fullmatch(value):
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise Invalid()
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            raise Invalid()
        return number

    return Validator(expected, parse)


def seconds(*, zero_allowed: bool = True) -> Validator:
    """A duration in seconds, a finite number; zero only where it has a meaning."""
    expected = "a number of seconds" + (" >= 0" if zero_allowed else " > 0")

    def parse(value: object) -> object:
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value):
            number = float(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        else:
            raise Invalid()
        if number != number or number in (float("inf"), float("-inf")):
            raise Invalid()
        if number < 0 or (number == 0 and not zero_allowed):
            raise Invalid()
        return number

    return Validator(expected, parse)


def _parse_bool(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise Invalid()


def boolean() -> Validator:
    """true/false; in text also 1/0 and yes/no, any case."""
    return Validator("a boolean (true/false, 1/0, yes/no)", _parse_bool)


def text(expected: str, check: Callable[[str], str] | None = None) -> Validator:
    """A string, optionally checked and normalised by ``check`` (which raises Invalid)."""

    def parse(value: object) -> object:
        if not isinstance(value, str):
            raise Invalid()
        return check(value) if check is not None else value

    return Validator(expected, parse)


def optional(inner: Validator) -> Validator:
    """None, or an empty string meaning None (environment and flags have no null)."""

    def parse(value: object) -> object:
        if value is None or value == "":
            return None
        return inner(value)

    return Validator(inner.expected + " (empty for none)", parse)


def choice(*names: str) -> Validator:
    """One of ``names``, any case; stored lower-case."""
    expected = "one of " + ", ".join(names)

    def parse(value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in names:
            return value.strip().lower()
        raise Invalid()

    return Validator(expected, parse)


def string_list(item: Validator, what: str, *, at_least_one: bool = False) -> Validator:
    """A TOML array of strings, or one string of comma-separated items; stored as a tuple.

    ``what`` names the items in plural for messages ("addresses"). A bad item is reported on
    its own, with the item's expected form.
    """
    size = "a non-empty list" if at_least_one else "a list"
    expected = f"{size} of {what} (or one comma-separated string)"

    def parse(value: object) -> object:
        if isinstance(value, str):
            items: list[object] = [part.strip() for part in value.split(",") if part.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise Invalid()
        result = []
        for raw in items:
            if not isinstance(raw, str):
                raise Invalid(f"item {show(raw)} is not a string")
            try:
                result.append(item(raw))
            except Invalid as exc:
                expected = exc.expected or item.expected
                raise Invalid(exc.detail, expected=expected, given=raw) from None
        if at_least_one and not result:
            raise Invalid()
        return tuple(result)

    return Validator(expected, parse)


# --- checks for particular settings -------------------------------------------------------


def _no_controls(value: str, what: str) -> None:
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise Invalid(f"{what} contains a control character")


def _check_path(value: str) -> str:
    if not value:
        raise Invalid("empty path")
    if "\x00" in value:
        raise Invalid("path contains a NUL byte")
    return value


def path() -> Validator:
    """A file system path (checked for existence later, by check_paths)."""
    return text("a path", _check_path)


def _check_log_target(value: str) -> str:
    return value if value == "-" else _check_path(value)


def log_target(stream: str) -> Validator:
    """'-' for the process's own stream, else a file path."""
    return text(f"'-' ({stream}) or a file path", _check_log_target)


_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PORT_TEXT = re.compile(r"[0-9]{1,5}")
_DEFAULT_PORT = "8000"


def _check_port(port: str) -> str:
    if not _PORT_TEXT.fullmatch(port) or int(port) > 65535:
        raise Invalid("the port must be a number from 0 to 65535")
    return str(int(port))


def _check_host(host: str) -> None:
    if host == "":
        return  # ":PORT" means every interface, as in gunicorn
    if ":" in host:
        raise Invalid("an IPv6 address goes in brackets: [::1]:8000")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise Invalid(f"{host!r} is not a valid IPv4 address") from None
        return
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise Invalid(f"{host!r} is not a valid host name or IP address")


def _check_bind(value: str) -> str:
    if value.startswith("unix:"):
        # "unix://PATH" is gunicorn's spelling of "unix:PATH"
        socket_path = value[7:] if value.startswith("unix://") else value[5:]
        return "unix:" + _check_path(socket_path)
    if value.startswith("fd://"):
        number = value[5:]
        if not re.fullmatch(r"[0-9]{1,9}", number):
            raise Invalid("a file descriptor is a non-negative number: fd://3")
        return f"fd://{int(number)}"
    if value.startswith("["):
        match = re.fullmatch(r"\[([^\]]*)\](?::(.*))?", value)
        if not match:
            raise Invalid("an IPv6 address is written [ADDRESS]:PORT")
        try:
            ipaddress.IPv6Address(match.group(1))
        except ValueError:
            raise Invalid(f"{match.group(1)!r} is not a valid IPv6 address") from None
        return f"[{match.group(1)}]:{_check_port(match.group(2) or _DEFAULT_PORT)}"
    host, colon, port = value.rpartition(":")
    if not colon:
        host, port = value, _DEFAULT_PORT  # a bare HOST means port 8000, as in gunicorn
    _check_host(host)
    return f"{host}:{_check_port(port)}"


def bind_address() -> Validator:
    """One listening address, normalised: ``HOST`` alone gets port 8000 (gunicorn's rule)."""
    return text("HOST:PORT, [IPv6]:PORT, :PORT, unix:PATH or fd://N", _check_bind)


def _check_tcp_address(value: str) -> str:
    if value.startswith(("unix:", "fd://")):
        raise Invalid("a TCP address is needed here: HOST:PORT or [IPv6]:PORT")
    return _check_bind(value)


def tcp_address() -> Validator:
    """A TCP listening address (metrics_bind): ``HOST`` alone gets port 8000, as bind."""
    return text("HOST:PORT or [IPv6]:PORT", _check_tcp_address)


def _check_statsd_address(value: str) -> str:
    if value.startswith("unix://"):
        return "unix://" + _check_path(value[len("unix://"):])
    if value.startswith(("unix:", "fd://")):
        raise Invalid("a statsd address is HOST:PORT, [IPv6]:PORT or unix://PATH")
    if ":" not in value or (value.startswith("[") and value.endswith("]")):
        value += ":8125"  # statsd's port, as gunicorn's default
    return _check_bind(value)


def statsd_address() -> Validator:
    """Where statsd datagrams go: HOST:PORT (port 8125 when left out) or unix://PATH."""
    return text("HOST:PORT, [IPv6]:PORT or unix://PATH", _check_statsd_address)


def _check_statsd_text(value: str) -> str:
    if not all(" " < char <= "~" and char not in "|@#" for char in value):
        raise Invalid("printable ASCII without spaces, '|', '@' or '#' (they frame a datagram)")
    return value


def statsd_text(expected: str) -> Validator:
    """A statsd prefix or dogstatsd tag list: what fits in a datagram's name or tags."""
    return text(expected, _check_statsd_text)


def _check_ip_or_network(value: str) -> str:
    if value == "*":
        return value
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    return value


def ip_or_network() -> Validator:
    """'*' (everyone), an IP address or a CIDR network without host bits."""
    return text("'*', an IP address or a CIDR network", _check_ip_or_network)


def _check_root_path(value: str) -> str:
    _no_controls(value, "the path")
    if value and (not value.startswith("/") or value.endswith("/")):
        raise Invalid("it must be empty or start with '/' and not end with '/'")
    return value


def root_path() -> Validator:
    return text("a URL path like /app (or empty)", _check_root_path)


class _AnyAtom(Mapping[str, str]):
    """Every key formats as an empty string: checks a %-format without knowing its atoms."""

    def __getitem__(self, key: str) -> str:
        return ""

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _check_log_format(value: str) -> str:
    try:
        value % _AnyAtom()
    except (ValueError, TypeError, KeyError) as exc:
        raise Invalid(f"not a %(name)s format: {exc}") from None
    return value


def access_log_format() -> Validator:
    return text("a %(atom)s format string", _check_log_format)


def _plain_data(value: object, where: str) -> None:
    """Tables, arrays, strings, numbers and booleans only (what TOML can hold: no null)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _plain_data(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _plain_data(item, f"{where}[{index}]")
    elif value is None:
        raise Invalid(f"{where} is null, which TOML cannot hold")


def _parse_log_config_dict(value: object) -> object:
    if isinstance(value, str):  # the environment and the command line: JSON text
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise Invalid(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Invalid()
    if value.get("version", 1) != 1:
        raise Invalid("version must be 1 (the only version of the schema)")
    _plain_data(value, "the table")
    return value


def log_config_dict() -> Validator:
    """A table in logging.config.dictConfig's schema (JSON text in the environment); what it
    configures is checked when logging is set up (server side): config/ imports no logging."""
    return Validator("a table in logging.config.dictConfig's schema (JSON as text)",
                     _parse_log_config_dict)


_FIELD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def _check_request_id_header(value: str) -> str:
    if not _FIELD_NAME.fullmatch(value) or len(value) > 64:
        raise Invalid("a header name is letters, digits and '-' (no '_': such headers never "
                      "reach the environ), at most 64 characters")
    return value


def request_id_header() -> Validator:
    return text("a header name like X-Request-ID", _check_request_id_header)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\$?")


def _check_user_or_group(value: str) -> str:
    if value.isdigit() or _NAME.fullmatch(value):
        return value
    raise Invalid("names are letters, digits, '_', '.' and '-'; ids are digits")


def user_or_group(what: str) -> Validator:
    """A name or a numeric id; TOML integers are kept as their decimal text."""
    checked = text(f"a {what} name or numeric id", _check_user_or_group)

    def parse(value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return str(value)
        return checked(value)

    return Validator(checked.expected, parse)


def _parse_umask(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"0[oO][0-7]+|0[0-7]*", value):
        number = int(value.lstrip("0oO") or "0", 8)  # leading 0: octal, as umask(1) reads it
    elif isinstance(value, str) and re.fullmatch(r"0[xX][0-9a-fA-F]+|[1-9][0-9]*", value):
        number = int(value, 0)
    else:
        raise Invalid()
    if not 0 <= number <= 0o777:
        raise Invalid("a umask is between 0 and 0o777")
    return number


def umask() -> Validator:
    """0o22, 022 (leading zero: octal), 18 (decimal) or 0x12 all mean the same mask."""
    return Validator("a umask like 0o22, 022 or 18", _parse_umask)


def _check_raw_env(value: str) -> str:
    key, equals, _ = value.partition("=")
    if not equals or not key:
        raise Invalid("the form is KEY=VALUE")
    if "\x00" in value:
        raise Invalid("contains a NUL byte")
    return value


def raw_env_item() -> Validator:
    return text("KEY=VALUE", _check_raw_env)


def _dotted(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))


def _attribute_chain(node: ast.expr) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return False
    return True


def _app_expression(expression: str) -> bool:
    """``attr``, ``attr.sub`` or ``factory(literal, key=literal)``, as gunicorn allows."""
    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        return False
    if isinstance(node, ast.Call):
        arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
        named = all(keyword.arg for keyword in node.keywords)
        return _attribute_chain(node.func) and named and all(map(_literal, arguments))
    return _attribute_chain(node)


def _check_wsgi_app(value: str) -> str:
    module, colon, expression = value.partition(":")
    if not _dotted(module):
        raise Invalid(f"{module!r} is not a module name")
    if colon and not _app_expression(expression):
        raise Invalid(f"{expression!r} is not an attribute or a call with literal arguments")
    return value


def wsgi_app() -> Validator:
    return text("module:attr, module:factory() or module", _check_wsgi_app)


# --- TLS and HTTP/2 -----------------------------------------------------------------------

_CERT_REQS = {"none": "none", "optional": "optional", "required": "required",
              "0": "none", "1": "optional", "2": "required"}


def _parse_cert_reqs(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value.strip().lower() in _CERT_REQS:
        return _CERT_REQS[value.strip().lower()]
    raise Invalid()


def cert_reqs() -> Validator:
    """none/optional/required, or gunicorn's 0/1/2 (ssl.CERT_NONE/OPTIONAL/REQUIRED)."""
    return Validator("none, optional or required (or 0, 1, 2)", _parse_cert_reqs)


_CIPHER_TEXT = re.compile(r"[A-Za-z0-9_+!:@=,.\- ]+")


def _check_ciphers(value: str) -> str:
    # Only the spelling is checked here (config/ does not load ssl); the server refuses a
    # list that OpenSSL selects nothing from when it builds the TLS context.
    if not _CIPHER_TEXT.fullmatch(value):
        raise Invalid("OpenSSL cipher lists use letters, digits and + ! : @ = , . - _")
    return value


def ciphers() -> Validator:
    return text("an OpenSSL cipher list", _check_ciphers)


def _parse_tls_version(value: object) -> object:
    if isinstance(value, float) and value in (1.2, 1.3):
        return str(value)
    if isinstance(value, str):
        lowered = value.strip().lower().removeprefix("tlsv")
        if lowered in ("1.2", "1.3"):
            return lowered
    raise Invalid()


def tls_version() -> Validator:
    """1.2 or 1.3 (also TLSv1.2, TLSv1.3); older versions are not offered."""
    return Validator("1.2 or 1.3", _parse_tls_version)


def _check_http_protocol(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in ("h1", "h2"):
        raise Invalid("the protocols are h1 and h2")
    return lowered


def http_protocol() -> Validator:
    return text("h1 or h2", _check_http_protocol)


_H2_CLEARTEXT = ("off", "prior-knowledge", "upgrade", "both")


def _parse_h2_cleartext(value: object) -> object:
    if isinstance(value, bool):  # gunicorn's reading of a boolean
        return "prior-knowledge" if value else "off"
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _H2_CLEARTEXT:
            return lowered
        if lowered in _TRUE or lowered in _FALSE:
            return "prior-knowledge" if lowered in _TRUE else "off"
    raise Invalid()


def h2_cleartext() -> Validator:
    return Validator("off, prior-knowledge, upgrade or both", _parse_h2_cleartext)


# gunicorn's spellings (its validate_proxy_protocol): booleans and 1/0/none mean auto/off.
_PROXY_PROTOCOL = {"off": "off", "false": "off", "0": "off", "none": "off", "no": "off",
                   "auto": "auto", "true": "auto", "1": "auto", "yes": "auto",
                   "v1": "v1", "v2": "v2"}


def _parse_proxy_protocol(value: object) -> object:
    if isinstance(value, bool):
        return "auto" if value else "off"
    if isinstance(value, str) and value.strip().lower() in _PROXY_PROTOCOL:
        return _PROXY_PROTOCOL[value.strip().lower()]
    raise Invalid()


def proxy_protocol() -> Validator:
    return Validator("off, v1, v2 or auto", _parse_proxy_protocol)
