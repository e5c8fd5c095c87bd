"""Start N copies of one server command on the same SO_REUSEPORT port, as an operator would by
hand (the kernel balances new connections between them), and stop them all on SIGTERM/SIGINT.

`python -m benchmarks.run_reuseport --processes 2 -- python -m treadle APP --reuse-port ...`

It is the figure treadle's own `--workers` is read against: the same processes without a
supervisor. No supervision here: a copy that exits ends the whole group.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from types import FrameType

STOP_TIMEOUT_S = 10.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_reuseport")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the server's argv")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.processes < 1:
        parser.error("give --processes N >= 1, then -- and the server's command")
    children = [subprocess.Popen(command) for _ in range(args.processes)]
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.1)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
