"""The PROXY protocol under benchmarks/fuzz.py: 600 mutated v1 and v2 headers (each followed
by a request) against the real server, each followed by a canary. No case may crash the
server, leave its connection hanging or fail the canary; descriptors come back to where
they started; and the run got through both doors: some headers refused (closed without a
word), some requests served after a valid header."""

from __future__ import annotations

from dataclasses import asdict

from benchmarks.fuzz import run

CASES = 600


def test_fuzzed_proxy_headers_break_nothing() -> None:
    counts = run(5, CASES, ("proxy",))
    summary = asdict(counts)
    assert counts.cases == CASES, summary
    assert counts.crashes == 0 and counts.hangs == 0, summary
    assert counts.canary_failures == 0 and counts.server_5xx == 0, summary
    assert counts.app_flagged == 0, summary
    assert counts.fds_end <= counts.fds_baseline, summary
    assert counts.closed_silently > CASES // 10 and counts.app_requests > CASES // 10, summary
