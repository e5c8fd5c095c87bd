"""A soak: mixed load on one server for a long time, watching its RSS, threads and descriptors.

    python -m benchmarks.soak --minutes 30                  # samples every 30 s
    python -m benchmarks.soak --minutes 3 --interval 10 --json soak.json

One `python -m treadle benchmarks.attack_app:app` (h2c by prior knowledge) gets, all at
once and for the whole run: HTTP/1.1 keep-alive `GET /` (two clients), 1 MiB uploads on a
kept connection, 10 MiB downloads, connection churn (a new connection per request) and
HTTP/2 `GET /` on a kept h2c connection, each client in its own thread asking as fast as it
is answered. Every `--interval` seconds it prints one row: RSS, threads, open descriptors,
requests answered since the last row and failures. At the end it compares the last sample
with the first after the warm-up (`--warmup` minutes, default a tenth of the run, at least
one interval) and flags growth: RSS more than 10 % or 5 MiB above, any thread or descriptor
more. Issue 14 item 12 (native heap growth under mixed load) is what it is for.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

from benchmarks.attackkit import (  # noqa: E402
    ActiveClient,
    H1Client,
    H2Client,
    Target,
    probe,
)
from benchmarks.stopping import stop_on_sigterm  # noqa: E402

UPLOAD_BYTES = 1 << 20
RSS_GROWTH_RATIO = 1.10
RSS_GROWTH_MIB = 5.0


class Uploader(H1Client):
    name = "uploader"
    REQUEST = b"POST /upload HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n" % UPLOAD_BYTES \
        + b"u" * UPLOAD_BYTES


class Downloader(H1Client):
    name = "downloader"
    REQUEST = b"GET /big HTTP/1.1\r\nHost: soak\r\n\r\n"


class Churn(ActiveClient):
    name = "churn"

    def connect(self) -> Any:
        return True

    def ask(self, conn: Any) -> None:
        if not probe(self.port):
            raise ConnectionError("churn request not answered")

    def close(self, conn: Any) -> None:
        pass


def _clients(port: int) -> dict[str, ActiveClient]:
    return {"h1": H1Client(port), "h1b": H1Client(port), "upload": Uploader(port),
            "download": Downloader(port), "churn": Churn(port), "h2": H2Client(port)}


def soak(minutes: float, interval_s: float, warmup_min: float | None,
         log: Path | None = None) -> dict[str, Any]:
    target = Target(("--graceful-timeout", "5"), log_path=log)
    clients = _clients(target.port)
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        for client in clients.values():
            client.start()
        answered_before = 0
        next_at = started
        while True:
            sample = target.sample()
            answered = sum(len(c.record.done) for c in clients.values())
            if sample is None:
                break
            rows.append({"minute": (sample.at - started) / 60, "rss_mib": sample.rss_mib,
                         "threads": sample.threads, "fds": sample.fds,
                         "answered": answered - answered_before,
                         "failures": sum(c.record.failures for c in clients.values())})
            print(_row(rows[-1]), flush=True)
            answered_before = answered
            next_at += interval_s
            if next_at - started > minutes * 60 + 1e-6:
                break
            time.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        for client in clients.values():
            client.stop()
        alive = target.alive()
        status = target.stop()
    warmup = warmup_min if warmup_min is not None else max(minutes / 10, interval_s / 60)
    return {"rows": rows, "alive": alive, "exit_status": status,
            "verdict": verdict(rows, warmup), "warmup_minutes": warmup}


def _row(row: dict[str, Any]) -> str:
    return (f"{row['minute']:7.1f} {row['rss_mib']:9.1f} {row['threads']:7d} {row['fds']:5d} "
            f"{row['answered']:9d} {row['failures']:8d}")


def verdict(rows: Sequence[dict[str, Any]], warmup_min: float) -> dict[str, Any]:
    """Growth from the first sample at or after the warm-up to the last one."""
    after = [row for row in rows if row["minute"] >= warmup_min - 1e-9]
    if len(after) < 2:
        return {"judged": False, "why": "no two samples after the warm-up"}
    first, last = after[0], after[-1]
    growth = {key: last[key] - first[key] for key in ("rss_mib", "threads", "fds")}
    flags = []
    if last["rss_mib"] > max(first["rss_mib"] * RSS_GROWTH_RATIO,
                             first["rss_mib"] + RSS_GROWTH_MIB):
        flags.append("rss")
    flags += [key for key in ("threads", "fds") if growth[key] > 0]
    return {"judged": True, "from_minute": first["minute"], "growth": growth, "flags": flags}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, help="minutes before growth counts")
    parser.add_argument("--json", type=Path, help="write the samples and verdict here")
    parser.add_argument("--log", type=Path, help="keep the server's log here")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    print(" minute   RSS MiB threads   fds  answered failures")
    result = soak(args.minutes, args.interval, args.warmup, args.log)
    judged = result["verdict"]
    if not judged["judged"]:
        print(f"not judged: {judged['why']}")
    else:
        growth = ", ".join(f"{k} {v:+.1f}" for k, v in judged["growth"].items())
        flags = ", ".join(judged["flags"]) or "none"
        print(f"after the warm-up (from minute {judged['from_minute']:.1f}): {growth}; "
              f"growing: {flags}")
    print(f"server alive at the end: {result['alive']}, exit status {result['exit_status']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["alive"] and not judged.get("flags") else 1


if __name__ == "__main__":
    sys.exit(main())
