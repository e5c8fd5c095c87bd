"""TLS with the stdlib ssl module: the server context, a non-blocking socket, the handshake.

The handshake is CPU work (key exchange, signatures) and may wait on a slow client, so it
never runs on the poller or in the accept loop: a worker calls `handshake_step`, which
either finishes, or says it needs the client's next bytes — then the connection waits in
the poller (holding no thread) until they arrive or `handshake_timeout` passes. A failed
handshake (plain HTTP on the TLS port, a refused client certificate, a scanner) costs one
debug log line.

`TLSSocket` makes an SSLSocket look like the plain non-blocking sockets the drivers use:
"want read/write" become BlockingIOError (WantRead, a kind of it, when a send waits
for the client's bytes), and a MSG_PEEK (used to decide whether closing
would reset the connection) looks at the raw bytes, which ssl does not allow.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from .errors import BodyTimeout, WantRead
from .sockio import wait_ready

ALPN_NAMES = {"h2": "h2", "h1": "http/1.1"}
_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class TLSConfigError(Exception):
    """The certificate, key, CA file or cipher list cannot be used (one line)."""


class TLSSocket(ssl.SSLSocket):
    """An SSLSocket whose non-blocking calls raise BlockingIOError like a plain socket's."""

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        if flags:
            return socket.socket.recv(self, buflen, flags)  # raw bytes: only peeks use flags
        try:
            return super().recv(buflen)
        except _WANT:
            raise BlockingIOError from None
        except ssl.SSLZeroReturnError:
            return b""

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        try:
            return super().recv_into(buffer, nbytes, flags)
        except _WANT:
            raise BlockingIOError from None
        except ssl.SSLZeroReturnError:
            return 0

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            return super().send(data, flags)
        except ssl.SSLWantReadError:
            raise WantRead from None
        except ssl.SSLWantWriteError:
            raise BlockingIOError from None


def build_context(cfg: Any) -> ssl.SSLContext | None:
    """The server context from the settings, or None when certfile is unset.

    Raises TLSConfigError naming the setting, its source and the file, and saying what is
    wrong with it: OpenSSL's own reasons ("PEM lib") do not tell a user which file to fix.
    """
    if cfg.certfile is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (ssl.TLSVersion.TLSv1_3 if cfg.ssl_min_version == "1.3"
                               else ssl.TLSVersion.TLSv1_2)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    _load_key_pair(context, cfg)
    if cfg.ciphers:
        try:
            context.set_ciphers(cfg.ciphers)
        except ssl.SSLError:
            raise TLSConfigError(f"{_where(cfg, 'ciphers')}: OpenSSL selects no cipher from "
                                 f"{cfg.ciphers!r} (see `openssl ciphers`)") from None
    if cfg.ca_certs is not None:
        if "CERTIFICATE-----" not in _read_pem(cfg, "ca_certs"):
            raise _file_error(cfg, "ca_certs", "holds no certificate")
        try:
            context.load_verify_locations(cfg.ca_certs)
        except (ssl.SSLError, OSError) as exc:
            raise _file_error(cfg, "ca_certs", f"cannot be loaded: {_reason(exc)}") from None
    context.verify_mode = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
                           "required": ssl.CERT_REQUIRED}[cfg.cert_reqs]
    protocols = [ALPN_NAMES[name] for name in cfg.http_protocols]
    if "http/1.1" not in protocols:
        protocols.append("http/1.1")  # still served to clients that cannot speak h2
    context.set_alpn_protocols(protocols)
    context.sslsocket_class = TLSSocket
    return context


def _load_key_pair(context: ssl.SSLContext, cfg: Any) -> None:
    """certfile and its key: each file read and looked at first, so that a missing key, a
    file that is not PEM or an encrypted key without its password is named as such."""
    if "CERTIFICATE-----" not in _read_pem(cfg, "certfile"):
        raise _file_error(cfg, "certfile", "holds no certificate (-----BEGIN CERTIFICATE-----)")
    key_setting = "keyfile" if cfg.keyfile is not None else "certfile"
    key_text = _read_pem(cfg, key_setting)
    if "PRIVATE KEY-----" not in key_text:
        problem = "holds no private key" if cfg.keyfile else "has no private key; set keyfile"
        raise _file_error(cfg, key_setting, problem)
    encrypted = "ENCRYPTED" in key_text
    if encrypted and cfg.keyfile_password is None:  # OpenSSL would prompt on the terminal
        raise _file_error(cfg, key_setting, "holds an encrypted private key; set "
                          "keyfile_password")
    try:
        context.load_cert_chain(cfg.certfile, cfg.keyfile, cfg.keyfile_password)
    except (ssl.SSLError, OSError) as exc:
        if getattr(exc, "reason", None) == "KEY_VALUES_MISMATCH":
            raise _file_error(cfg, key_setting, "holds a private key that does not match the "
                              f"certificate in certfile {cfg.certfile}") from None
        if encrypted:
            raise TLSConfigError(f"{_where(cfg, 'keyfile_password')}: cannot decrypt the "
                                 f"private key in {key_setting} {getattr(cfg, key_setting)}: "
                                 "wrong password") from None
        raise TLSConfigError(f"{_where(cfg, 'certfile')}: cannot load {cfg.certfile} with its "
                             f"key from {key_setting}: {_reason(exc)}") from None


def _where(cfg: Any, name: str) -> str:
    sources = getattr(cfg, "sources", None) or {}
    return f"{name} ({sources.get(name, 'default')})"


def _file_error(cfg: Any, name: str, problem: str) -> TLSConfigError:
    return TLSConfigError(f"{_where(cfg, name)}: {getattr(cfg, name)} {problem}")


def _read_pem(cfg: Any, name: str) -> str:
    """The text of the PEM file that setting `name` names (bytes kept as latin-1)."""
    path = getattr(cfg, name)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise TLSConfigError(f"{_where(cfg, name)}: no such file: {path}") from None
    except PermissionError:
        raise TLSConfigError(f"{_where(cfg, name)}: cannot read {path}: permission denied "
                             "for this user") from None
    except OSError as exc:
        raise TLSConfigError(f"{_where(cfg, name)}: cannot read {path}: "
                             f"{exc.strerror or exc}") from None
    text = data.decode("latin-1")
    if "-----BEGIN " not in text:
        raise _file_error(cfg, name, "is not a PEM file (no -----BEGIN line; a DER file "
                          "converts with `openssl x509 -inform der`)")
    return text


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def wrap(context: ssl.SSLContext, sock: socket.socket) -> TLSSocket:
    """Put a server-side TLS layer on an accepted socket; no I/O happens yet."""
    tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    assert isinstance(tls, TLSSocket)
    return tls


def handshake_step(sock: TLSSocket, deadline: float) -> bool:
    """Advance the handshake without waiting for the client: True when it is complete,
    False when the client's next bytes are needed. Raises ssl.SSLError or OSError when it
    fails, TimeoutError when `deadline` passes while our own bytes cannot be sent."""
    while True:
        try:
            sock.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLWantWriteError:
            try:
                wait_ready(sock, True, deadline)
            except BodyTimeout:
                raise TimeoutError("the client stopped reading the handshake") from None


def connection_environ(sock: TLSSocket) -> dict[str, Any]:
    """The environ entries of a TLS connection: the scheme and the verified client
    certificate, if any (the dict of getpeercert() and its PEM text)."""
    environ: dict[str, Any] = {"wsgi.url_scheme": "https", "HTTPS": "on"}
    der = sock.getpeercert(binary_form=True)
    if der:
        environ["treadle.peercert"] = sock.getpeercert()
        environ["SSL_CLIENT_CERT"] = ssl.DER_cert_to_PEM_cert(der)
    return environ


def negotiated_h2(sock: TLSSocket) -> bool:
    return sock.selected_alpn_protocol() == "h2"
