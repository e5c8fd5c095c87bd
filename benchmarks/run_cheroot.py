"""Start cheroot's WSGI server on one address: cheroot has no command line for WSGI apps.

`python -m benchmarks.run_cheroot --bind HOST:PORT --threads N module:attr`
The listen queue is raised from cheroot's default of 5 to treadle's 2048, so that the
500-connection load measures the server, not the kernel dropping SYNs.
"""

from __future__ import annotations

import argparse
import importlib

from cheroot import wsgi


def main() -> None:
    parser = argparse.ArgumentParser(prog="run_cheroot")
    parser.add_argument("--bind", required=True, help="HOST:PORT")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("app", help="module:attr")
    args = parser.parse_args()
    host, _, port = args.bind.rpartition(":")
    module_name, _, attr = args.app.partition(":")
    app = getattr(importlib.import_module(module_name), attr or "application")
    server = wsgi.Server(
        (host, int(port)), app, numthreads=args.threads, request_queue_size=2048
    )
    server.safe_start()


if __name__ == "__main__":
    main()
