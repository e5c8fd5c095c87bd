"""Smoke test of benchmarks/h2path.py: the HTTP/2 request path of one thread (a real
H2Driver and an h2 client on a socket pair) answers every request, and the profile splits
the time between h2 and treadle. It checks the figures are there, not how fast anything is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.h2path import h2_floor, one_run

ROOT = Path(__file__).resolve().parents[2]


def test_both_runs_answer_every_request() -> None:
    # (each loops until all 300 are answered)
    assert one_run(requests=300, streams=10) > 0
    assert h2_floor(requests=300, streams=10) > 0


def test_the_profile_splits_h2_from_treadle() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.h2path", "--requests", "200", "--profile"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "h2, hpack, hyperframe" in completed.stdout and "treadle" in completed.stdout
