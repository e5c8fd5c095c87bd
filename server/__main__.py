# `python -m server APP`: kept for habit and for running from a checkout of the repository.
# The server itself lives in the `treadle` package; this only hands over to its command line.
import sys

from treadle.server.cli import main

sys.exit(main())
