# `python -m server APP` in an installed environment: hands over to treadle's command line.
# The server itself lives in the `treadle` package; this module is only the entry point, so an
# application's own `server` package (imported from its directory) is never shadowed by ours.
# Where the application's directory has a `server.py` or `server/` of its own, Python runs that
# one for `-m server` by its own rules: use `treadle APP` or `python -m treadle APP` there.
import sys

from treadle.server.cli import main

if __name__ == "__main__":
    sys.exit(main())
