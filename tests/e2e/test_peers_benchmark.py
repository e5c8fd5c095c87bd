"""Smoke test of benchmarks/peers.py: one short round against our own server.

It runs the script as a subprocess (the script pins itself to a core; pytest must not be),
on the two loads that exercise the most of its own code: wrk with the Lua reporter, and the
idle clients. It checks the figures are there and sane, not how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.peers import median_results
from benchmarks.report import svg_chart
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]


def test_peers_script_measures_our_server(tmp_path: Path) -> None:
    require_tool("wrk")
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.peers", "--duration", "1", "--rounds", "1",
         "--servers", "treadle", "--loads", "keepalive,idle-500", "--threads", "2",
         "--output", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr + completed.stdout
    [result_file] = tmp_path.glob("peers-*.json")
    results = json.loads(result_file.read_text())
    assert [run.get("error") for run in results["runs"]] == [None, None], results["runs"]
    keepalive = results["median"]["keepalive"]["treadle"]
    assert keepalive["rps"] > 0 and 0 < keepalive["p50_ms"] <= keepalive["p99_ms"]
    assert keepalive["peak_rss_mib"] > 1
    idle = results["median"]["idle-500"]["treadle"]["idle"]
    assert idle["connections"] == 450 and 0 < idle["answered"] <= idle["sent"]
    assert "keepalive: keep-alive hello world" in completed.stdout
    assert list(tmp_path.glob("peers-*.svg")) or list(tmp_path.glob("peers-*.png"))


def test_medians_and_chart_from_runs() -> None:
    runs = [{"server": "treadle", "load": "keepalive", "round": i, "rps": rps, "p50_ms": 1.0,
             "p99_ms": p99, "errors": 0, "timeouts": 0, "peak_rss_mib": 20.0}
            for i, (rps, p99) in enumerate([(100.0, 9.0), (300.0, 3.0), (200.0, 5.0)])]
    runs.append({"server": "waitress", "load": "keepalive", "round": 0, "error": "failed"})
    medians = median_results(runs)
    assert medians == {"keepalive": {"treadle": {
        "rps": 200.0, "p50_ms": 1.0, "p99_ms": 5.0, "errors": 0, "timeouts": 0,
        "peak_rss_mib": 20.0, "cpu_us_per_req": None, "rounds": 3}}}
    meta = {"loads": {"keepalive": "hello <world>"}, "servers": ["treadle", "waitress"],
            "rounds": 3, "duration_s": 5, "threads": 8, "started": "now"}
    svg = svg_chart(medians, meta)
    assert svg.startswith("<svg") and "hello &lt;world&gt;" in svg and "200 req/s" in svg
