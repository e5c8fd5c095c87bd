"""The suite's run of benchmarks/fuzz.py: 2,000 mutated cases (half HTTP/1.1, half HTTP/2)
against the real server, each followed by a canary on a new connection.

No case may crash the server, leave its connection hanging, fail the canary, get a 5xx the
application did not ask for, hand the application a request with a control byte in a value
or a body of the wrong length, or pass more HTTP/1.1 requests than h11 finds in the same
bytes; the server's descriptors come back to where they started. The counts of answers and
of requests that reached the application show the cases were not all refused at the door.
"""

from __future__ import annotations

from dataclasses import asdict

from benchmarks.fuzz import run

CASES = 2000
SEED = 1
JOBS = 8  # a case mostly waits (an HTTP/2 case over a budget is paused 1 s): 8 servers


def test_fuzzed_requests_and_frames_break_nothing() -> None:
    counts = run(SEED, CASES, ("h1", "h2"), jobs=JOBS)
    summary = asdict(counts)
    assert counts.cases == CASES, summary
    assert counts.crashes == 0 and counts.hangs == 0, summary
    assert counts.canary_failures == 0 and counts.server_5xx == 0, summary
    assert counts.app_flagged == 0 and counts.beyond_h11 == 0, summary
    assert counts.fds_end <= counts.fds_baseline, summary
    # the fuzzer got through: answers, requests in the application, its own asked-for 500s
    assert counts.answers > CASES // 2 and counts.app_requests > CASES // 4, summary
    assert counts.asked_5xx > 0, summary
