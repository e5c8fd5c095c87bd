# Rules between settings, checked once all sources are merged: a value that is fine alone
# but meaningless or unsafe with another (a key without a certificate, client certificates
# without the CAs to verify them, h2c on a TLS listener). Files are not opened here; whether
# they exist and load is check_paths' business.
from __future__ import annotations

from collections.abc import Iterator, Mapping

from .errors import ConfigError

__all__ = ["check_combinations"]


def _problems(values: Mapping[str, object]) -> Iterator[tuple[str, str]]:
    """(setting to blame, what is wrong) for each rule broken."""
    tls = values["certfile"] is not None
    if values["keyfile"] is not None and not tls:
        yield "keyfile", "a key without certfile does nothing; set certfile too"
    if values["keyfile_password"] is not None and not tls:
        yield "keyfile_password", "a key password without certfile does nothing"
    if values["ca_certs"] is not None and not tls:
        yield "ca_certs", "client certificates need TLS: set certfile too"
    if values["cert_reqs"] != "none":
        if not tls:
            yield "cert_reqs", "client certificates need TLS: set certfile too"
        elif values["ca_certs"] is None:
            yield "cert_reqs", f"{values['cert_reqs']} client certificates need ca_certs " \
                "to verify them against"
    protocols = values["http_protocols"]
    assert isinstance(protocols, tuple)
    if len(set(protocols)) != len(protocols):
        yield "http_protocols", "a protocol is listed twice"
    if values["http2_cleartext"] != "off":
        if "h2" not in protocols:
            yield "http2_cleartext", "h2c needs h2 in http_protocols"
        elif tls:
            yield "http2_cleartext", "with certfile every listener is TLS, where ALPN " \
                "chooses HTTP/2; h2c cannot be served"


def check_combinations(values: Mapping[str, object], sources: Mapping[str, str]) -> None:
    """Raise ConfigError (one line naming the setting and its source) for the first broken
    rule between settings."""
    for name, problem in _problems(values):
        raise ConfigError(f"{name} ({sources.get(name, 'default')}): {problem}")
