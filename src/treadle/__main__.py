# `python -m treadle APP`: the same command line as the `treadle` console script.
import sys

from treadle.server.cli import main

sys.exit(main())
