"""Setting up treadle's two loggers, treadle.error and treadle.access, from the configuration:
errorlog, accesslog, loglevel and log_format, then logconfig_dict or logconfig (the standard
library's logging configuration: dictConfig's schema, or fileConfig's ini file).

Order, as gunicorn's: the levels first, then the logging configuration (which may give either
logger handlers of its own, a level, or propagation), then errorlog and accesslog for the
loggers it left alone. dictConfig and fileConfig close every handler that exists when they
run, which is why ours are made after them.

Differences from gunicorn, on purpose: gunicorn merges the table over defaults that send
every logger to the console (so a table that names only `root` still changes where the access
log goes); here only {"version": 1, "disable_existing_loggers": false} is merged under it, so a
logger the table leaves alone keeps what errorlog or accesslog gave it. A table written for
gunicorn keeps working: what it configures for gunicorn.error and gunicorn.access is moved to
treadle.error and treadle.access.
"""

from __future__ import annotations

import copy
import logging
import logging.config
import os
import sys
from collections.abc import Mapping
from typing import Any

from .logs import ACCESS_LOGGER, ERROR_LOGGER, error_formatter, log_handler, reset

_DEFAULTS = {"version": 1, "disable_existing_loggers": False}
_GUNICORN_NAMES = (("gunicorn.error", ERROR_LOGGER), ("gunicorn.access", ACCESS_LOGGER))


class LogConfigError(Exception):
    """The logging configuration was refused; the message says which setting and why."""


def apply_log_config(table: Mapping[str, Any] | None, ini_path: str | None) -> None:
    """Apply logconfig_dict (`table`), else the logconfig file; LogConfigError if refused."""
    if table is None and ini_path is None:
        return
    for theirs, _ours in _GUNICORN_NAMES:  # as gunicorn's own: no propagation unless asked
        logging.getLogger(theirs).propagate = False
    if table is not None:
        config = {**_DEFAULTS, **copy.deepcopy(dict(table))}
        try:
            logging.config.dictConfig(config)
        except (ValueError, TypeError, AttributeError, ImportError, KeyError) as exc:
            raise LogConfigError(f"logconfig_dict: {_reason(exc)}") from None
    elif ini_path is not None:
        try:
            logging.config.fileConfig(ini_path, disable_existing_loggers=False, defaults={
                "here": os.path.dirname(ini_path), "__file__": ini_path})
        except Exception as exc:  # configparser and logging raise many kinds
            raise LogConfigError(f"logconfig {ini_path}: {_reason(exc)}") from None
    for theirs, ours in _GUNICORN_NAMES:
        _adopt(theirs, ours)


def _reason(exc: BaseException) -> str:
    """dictConfig chains the real cause ("Unable to configure handler 'x'" from ...)."""
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f": {cause}"
    return text


def _adopt(theirs: str, ours: str) -> None:
    """Move what a gunicorn-named logger was given (handlers, level, propagate) to ours."""
    existing = logging.Logger.manager.loggerDict.get(theirs)
    if not isinstance(existing, logging.Logger) or not existing.handlers:
        return
    target = logging.getLogger(ours)
    reset(target)
    for handler in list(existing.handlers):
        existing.removeHandler(handler)
        target.addHandler(handler)
    if existing.level != logging.NOTSET:
        target.setLevel(existing.level)
    target.propagate = existing.propagate


def setup_logs(cfg: Any) -> tuple[logging.Logger, logging.Logger | None]:
    """(treadle.error, treadle.access or None when nothing writes the access log).
    OSError when a log file cannot be opened, LogConfigError when logging refuses the
    logging configuration."""
    error_log = logging.getLogger(ERROR_LOGGER)
    access_log = logging.getLogger(ACCESS_LOGGER)
    for logger in (error_log, access_log):
        reset(logger)
        logger.propagate = False  # on after the configuration: the configuration asked
        logger.disabled = False
    error_log.setLevel(cfg.loglevel.upper())
    access_log.setLevel(logging.INFO)
    refused = None
    try:
        apply_log_config(cfg.logconfig_dict, cfg.logconfig)
    except LogConfigError as exc:
        refused = exc  # errorlog and accesslog still get their handlers, to say so
    if not _configured(error_log):
        error_log.addHandler(log_handler(cfg.errorlog, sys.stderr,
                                         error_formatter(cfg.log_format == "json")))
    access_on = _configured(access_log)
    if not access_on and cfg.accesslog is not None:
        access_log.addHandler(log_handler(cfg.accesslog, sys.stdout,
                                          logging.Formatter("%(message)s")))
        access_on = True
    if refused is not None:
        raise refused
    return error_log, access_log if access_on and not access_log.disabled else None


def log_settings(cfg: Any) -> tuple[object, ...]:
    """What setup_logs reads: a reload sets the logs up again only when it changed."""
    return (cfg.errorlog, cfg.loglevel, cfg.accesslog, cfg.log_format, cfg.logconfig_dict,
            cfg.logconfig)


def _configured(logger: logging.Logger) -> bool:
    """Whether the logging configuration gave the logger somewhere to write."""
    return bool(logger.handlers) or logger.propagate
