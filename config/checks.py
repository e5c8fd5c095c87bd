# What --check-config asks of the outside world, kept apart from validation (which is pure):
# the directories, files, inherited sockets, users and groups that the settings name (the TLS
# files are the server's to check: reading them fully takes ssl).
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
    for name in ("config", "logconfig"):
        value = getattr(cfg, name)
        if value is not None and not os.path.isfile(value):
            yield f"{_where(cfg, name)}: no such file: {value}"
    for name in ("pidfile", "accesslog", "errorlog"):
        value = getattr(cfg, name)
        if value is not None and value != "-":
            problem = _writable_file(value)
            if problem:
                yield f"{_where(cfg, name)}: {problem}"


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
    writable), Unix socket directories, inherited fd:// sockets, and the user and group. The
    TLS files are checked where they are loaded (server/tls.py), as config/ may not use ssl.
    Each problem is one line naming the setting and its source.
    """
    return [*_files(cfg), *_sockets(cfg), *_accounts(cfg)]
