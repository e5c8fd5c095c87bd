"""The short form of benchmarks/attacks.py: every attack of issue 14 against the real server,
a fraction of a second each (the HTTP/2 floods 1.6 s: long enough to be paused, then cut off),
asserting only facts that do not depend on the machine's speed.

After every attack the server is alive, gives back every descriptor (to the count it had
before any client came) and every connection slot, answers the active HTTP/1.1 and HTTP/2
clients and a fresh HTTP/2 connection, and exits 0 on SIGTERM. The active HTTP/1.1 client
is answered during every attack: where the server keeps serving (silent clients at the cap
are evicted; heads, bodies up to request_buffer_size and responses slow readers leave
behind are handled by the poller, so more slow readers or uploaders than the 4 pool threads
hold none of them; an HTTP/2 connection's zero-window streams hold at most its share of the
workers) the probes on fresh connections are too. Every HTTP/2 flood (issue 14 item 8) ends
with GOAWAY: the server stops reading a connection over a frame budget and cuts it at its
next excess. Rates are the benchmark's job.
"""

from __future__ import annotations

import pytest

from benchmarks.attacks import SCENARIOS, Scale, run_scenario

DURATION_S = 0.4


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_server_survives_and_recovers(scenario) -> None:  # type: ignore[no-untyped-def]
    result = run_scenario(scenario, DURATION_S, Scale(short=True))
    facts = {key: result[key] for key in ("alive", "exit_status", "fds_baseline", "fds_settled",
                                          "fds_after_slots", "slots_free", "h2_probe_after")}
    assert result["alive"] and result["exit_status"] == 0, facts
    assert result["fds_settled"] <= result["fds_baseline"], facts
    assert result["slots_free"] and result["fds_after_slots"] <= result["fds_baseline"], facts
    assert result["h1"]["after"]["answered"] > 0, result["h1"]
    assert result["h2"]["after"]["answered"] > 0 and result["h2_probe_after"], result["h2"]
    assert result["h1"]["during"]["answered"] > 0, result["h1"]
    if scenario.handled_during:
        assert result["probes_during"]["answered"] > 0, result["probes_during"]
    if scenario.goaway:
        assert result["attack"]["closed_by_server"] > 0, result["attack"]
