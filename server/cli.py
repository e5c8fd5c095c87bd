# The command line: `treadle [OPTIONS] [APP]` (also `python -m treadle` and `python -m server`).
# It only turns settings into an action and errors into one line and an exit status; the
# options themselves are generated from config/schema.py, serving lives in server/run.py.
from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

from ..config import Config, ConfigError, check_paths, load, to_toml

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_CONFIG = 2


def _error(message: str) -> None:
    print(f"treadle: error: {message}", file=sys.stderr)


def _check(cfg: Config) -> int:
    """--check-config: settings are already valid; now the files they name and the app."""
    problems = check_paths(cfg)
    if cfg.certfile is not None:
        # config/ may not import ssl; loading the key pair is the only full check of it
        from .tls import TLSConfigError, build_context

        try:
            build_context(cfg)
        except TLSConfigError as exc:
            problems.append(str(exc))
    if cfg.logconfig_dict is not None or (cfg.logconfig and os.path.isfile(cfg.logconfig)):
        # only logging itself can tell whether it takes the configuration (as gunicorn's does)
        from .logsetup import LogConfigError, apply_log_config

        try:
            apply_log_config(cfg.logconfig_dict, cfg.logconfig)
        except LogConfigError as exc:
            problems.append(str(exc))
    if cfg.wsgi_app is not None:
        from .app import AppLoadError, load_app  # the server side may be absent in tests

        try:
            load_app(cfg)
        except AppLoadError as exc:
            sys.stderr.write(exc.traceback)  # before the summary lines, as when serving
            problems.append(f"wsgi_app ({cfg.sources['wsgi_app']}): {exc}")
    for problem in problems:
        _error(problem)
    if problems:
        return EXIT_CONFIG
    # stderr, so that --print-config --check-config still prints pure TOML on stdout
    note = "" if cfg.wsgi_app else " (no APP given, none imported)"
    print(f"treadle: configuration OK{note}", file=sys.stderr)
    return EXIT_OK


def _act(cfg: Config) -> int:
    if cfg.print_config or cfg.check_config:
        if cfg.print_config:
            sys.stdout.write(to_toml(cfg))
            sys.stdout.flush()
        return _check(cfg) if cfg.check_config else EXIT_OK
    if cfg.wsgi_app is None:
        _error("no application given: treadle [OPTIONS] module:attr (see treadle --help)")
        return EXIT_CONFIG
    from .run import run

    return run(cfg)


def main(argv: Sequence[str] | None = None) -> int:
    """Run treadle with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    0 clean stop, 1 unexpected failure, 2 configuration or usage error, 3 the application
    cannot be loaded, 4 a listening socket cannot be opened (3 and 4 come from server.run).
    """
    debug = False
    try:
        cfg = load(sys.argv[1:] if argv is None else argv, os.environ, os.getcwd())
        debug = cfg.loglevel == "debug"
        return _act(cfg)
    except ConfigError as exc:
        for problem in exc.problems:
            _error(problem)
        sys.stderr.write(exc.details)
        return EXIT_CONFIG
    except SystemExit as exc:  # --help, --version, or sys.exit() from the application
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or EXIT_OK
        _error(str(exc.code))
        return EXIT_UNEXPECTED
    except KeyboardInterrupt:  # Ctrl-C before the server's own handlers are in place
        return EXIT_OK
    except Exception as exc:  # the last line of defence: one line, status 1
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run with --log-level debug for the traceback)"
        _error(f"unexpected {type(exc).__name__}: {exc}{hint}")
        return EXIT_UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())
