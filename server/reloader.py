"""`--reload` for development: notice that the application's source files changed.

Each worker watches what it imported itself: the files of the modules in sys.modules that lie
under the working directory (after --chdir) or the application's top-level package, leaving
out the interpreter's own library and site-packages (and treadle itself), plus
`reload_extra_files`. The worker's heartbeat tick asks `changed()` about once a second; a stat
per file, with the list rebuilt only when sys.modules grows or shrinks. Polling with the stdlib
only: no inotify dependency, and it works on any file system. On a change the worker asks its
arbiter for a new generation (server/worker.py), so an edit that does not import leaves the
old workers serving.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Iterable


def _excluded_dirs() -> tuple[str, ...]:
    """Directories whose modules are never the application's: the interpreter's library,
    every site-packages, and treadle's own folders."""
    paths = sysconfig.get_paths()
    dirs = {paths.get(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.update(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    here = os.path.dirname(os.path.abspath(__file__))
    dirs.update({here, os.path.join(os.path.dirname(here), "protocol"),
                 os.path.join(os.path.dirname(here), "config")})
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs if d)


class SourceWatch:
    """The modification times of the application's source files and the extra files."""

    def __init__(self, app_module: str, extra_files: Iterable[str]) -> None:
        roots = {os.getcwd()}
        top = sys.modules.get(app_module.split(".", 1)[0])
        top_file = getattr(top, "__file__", None)
        if top_file:
            roots.add(os.path.dirname(os.path.abspath(top_file)))  # a module, or a package
        self.roots = tuple(os.path.join(os.path.realpath(r), "") for r in roots)
        self.excluded = _excluded_dirs()
        self.extra = [os.path.abspath(path) for path in extra_files]
        self._module_count = -1
        self._files: list[str] = []
        self.mtimes: dict[str, float] = {}
        self.changed()  # the first look only records

    def files(self) -> list[str]:
        if len(sys.modules) != self._module_count:
            self._module_count = len(sys.modules)
            found = set(self.extra)
            for module in list(sys.modules.values()):
                path = getattr(module, "__file__", None)
                if not path:
                    continue
                path = os.path.realpath(path)
                if path.startswith(self.roots) and not path.startswith(self.excluded):
                    found.add(path)
            self._files = sorted(found)
        return self._files

    def changed(self) -> str | None:
        """The first watched file whose modification time changed since the last look (a
        file that disappears counts, one that appears among the extra files too)."""
        first = None
        for path in self.files():
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                mtime = -1.0
            before = self.mtimes.get(path)
            self.mtimes[path] = mtime
            if before is not None and before != mtime and first is None:
                first = path
        return first
