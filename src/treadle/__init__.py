"""treadle: a threaded WSGI server with a strict, fast HTTP/1.1 engine and HTTP/2.

The distribution's one import name. Its parts are subpackages, each a top-level folder of the
repository mapped here by packaging (pyproject.toml):

- ``treadle.protocol``: the sans-IO HTTP/1.1 engine with h11's public API
  (``from treadle import protocol as h11``) and the HTTP/2 header policy;
- ``treadle.config``: the settings schema, its sources and the frozen result;
- ``treadle.server``: sockets, threads, processes, signals and logs.

Run it with ``treadle APP`` or ``python -m treadle APP``.
"""

from .protocol.version import __version__ as __version__
