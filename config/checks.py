# What --check-config asks of the outside world, kept apart from validation (which is pure):
# the directories, files, inherited sockets, users and groups that the settings name.
# Nothing here runs at import time or during loading.
from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from .model import Config

__all__ = ["check_paths"]


def _where(cfg: Config, name: str) -> str:
    return f"{name} ({cfg.sources.get(name, 'default')})"


def _writable_file(path: str) -> str | None:
    """Why ``path`` cannot be created or appended to, or None."""
    if os.path.isdir(path):
        return f"{path} is a directory"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        return f"directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"directory {parent} is not writable"
    return None


def _files(cfg: Config) -> Iterator[str]:
    if cfg.chdir is not None and not os.path.isdir(cfg.chdir):
        yield f"{_where(cfg, 'chdir')}: no such directory: {cfg.chdir}"
    if cfg.config is not None and not os.path.isfile(cfg.config):
        yield f"{_where(cfg, 'config')}: no such file: {cfg.config}"
    for name in ("pidfile", "accesslog", "errorlog"):
        value = getattr(cfg, name)
        if value is not None and value != "-":
            problem = _writable_file(value)
            if problem:
                yield f"{_where(cfg, name)}: {problem}"


def _readable(cfg: Config, name: str) -> Iterator[str]:
    value = getattr(cfg, name)
    if value is None:
        return
    if not os.path.isfile(value):
        yield f"{_where(cfg, name)}: no such file: {value}"
    elif not os.access(value, os.R_OK):
        yield f"{_where(cfg, name)}: {value} is not readable"


def _tls(cfg: Config) -> Iterator[str]:
    """The certificate, key and CA files exist and load as the server will load them."""
    problems = [*_readable(cfg, "certfile"), *_readable(cfg, "keyfile"),
                *_readable(cfg, "ca_certs")]
    yield from problems
    if problems or cfg.certfile is None:
        return
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cfg.certfile, cfg.keyfile, cfg.keyfile_password)
    except ssl.SSLError as exc:
        where = _where(cfg, "keyfile" if cfg.keyfile else "certfile")
        hint = "" if cfg.keyfile else " (no keyfile: the key must be in certfile)"
        if cfg.keyfile_password is not None:
            hint += f" (or keyfile_password from {cfg.sources.get('keyfile_password')} is wrong)"
        yield f"{where}: cannot load the certificate and key: {exc.reason or exc}{hint}"
    except OSError as exc:
        yield f"{_where(cfg, 'certfile')}: cannot load the certificate and key: {exc}"
    if cfg.ca_certs is not None:
        try:
            context.load_verify_locations(cfg.ca_certs)
        except (ssl.SSLError, OSError) as exc:
            yield f"{_where(cfg, 'ca_certs')}: cannot load CA certificates: {exc}"


def _fd_problem(number: int) -> str | None:
    try:
        mode = os.fstat(number).st_mode
    except OSError:
        return f"file descriptor {number} is not open"
    return None if stat.S_ISSOCK(mode) else f"file descriptor {number} is not a socket"


def _sockets(cfg: Config) -> Iterator[str]:
    for address in cfg.bind:
        if address.startswith("unix:"):
            parent = os.path.dirname(address[5:]) or "."
            if not os.path.isdir(parent):
                yield f"{_where(cfg, 'bind')}: {address}: directory {parent} does not exist"
        elif address.startswith("fd://"):
            problem = _fd_problem(int(address[5:]))
            if problem:
                yield f"{_where(cfg, 'bind')}: {address}: {problem}"


def _accounts(cfg: Config) -> Iterator[str]:
    if cfg.user is None and cfg.group is None:
        return
    try:
        import grp
        import pwd
    except ImportError:
        yield f"{_where(cfg, 'user')}: switching user or group needs a Unix system"
        return
    # numeric ids need no entry in the user database: setuid() takes any of them
    if cfg.user is not None and not cfg.user.isdigit():
        try:
            pwd.getpwnam(cfg.user)
        except KeyError:
            yield f"{_where(cfg, 'user')}: no such user: {cfg.user}"
    if cfg.group is not None and not cfg.group.isdigit():
        try:
            grp.getgrnam(cfg.group)
        except KeyError:
            yield f"{_where(cfg, 'group')}: no such group: {cfg.group}"


def check_paths(cfg: Config) -> list[str]:
    """Problems with what the settings name outside the process; an empty list means fine.

    Covers chdir, the config file, the pid and log files (their directory must exist and be
    writable), the TLS certificate, key and CA files (loaded as the server will load them,
    so a key that does not match or a wrong password shows here), Unix socket directories,
    inherited fd:// sockets, and the user and group.
    Each problem is one line naming the setting and its source.
    """
    return [*_files(cfg), *_tls(cfg), *_sockets(cfg), *_accounts(cfg)]
