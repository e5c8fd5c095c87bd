"""The metrics registry (server/metrics.py), its text formats (server/metricstext.py) and the
shared slots the arbiter reads (server/metricshub.py)."""

from __future__ import annotations

import threading

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from treadle.server import metrics as m
from treadle.server.metricshub import SnapshotSlot
from treadle.server.metricstext import render, wants_openmetrics


def test_threads_count_into_their_own_shards_and_a_snapshot_adds_them_up() -> None:
    metrics = m.Metrics()

    def serve(count: int) -> None:
        for _ in range(count):
            shard = metrics.begin()
            metrics.end(shard, "GET", 200, "HTTP/1.1", 0.003, 10, 20)

    threads = [threading.Thread(target=serve, args=(500,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = metrics.snapshot()
    assert snapshot[(m.REQUESTS, ("GET", "200", "HTTP/1.1"))] == 2000
    assert snapshot[(m.DURATION + "_bucket", ("0.005",))] == 2000
    assert snapshot[(m.DURATION + "_count", ())] == 2000
    assert snapshot[(m.REQUEST_BYTES, ())] == 20000
    assert snapshot[(m.RESPONSE_BYTES, ())] == 40000
    assert snapshot[(m.IN_FLIGHT, ())] == 0


def test_label_values_stay_few() -> None:
    metrics = m.Metrics()
    for method in ("FOO", "BAR", "X" * 50):
        metrics.end(metrics.begin(), method, 200, "HTTP/1.7", 0.0, 0, 0)
    requests = {key: count for key, count in metrics.snapshot().items()
                if key[0] == m.REQUESTS}
    assert requests == {(m.REQUESTS, ("other", "200", "other")): 3}


def test_in_flight_and_rejections() -> None:
    metrics = m.Metrics()
    shard = metrics.begin()
    metrics.rejected("timeout")
    metrics.rejected(m.rejection_of(431))
    metrics.rejected(m.rejection_of(400))
    snapshot = metrics.snapshot()
    assert snapshot[(m.IN_FLIGHT, ())] == 1
    assert snapshot[(m.REJECTED, ("timeout",))] == 1
    assert snapshot[(m.REJECTED, ("limits",))] == 1
    assert snapshot[(m.REJECTED, ("bad_request",))] == 1
    metrics.end(shard, "GET", 200, "HTTP/2", 20.0, 0, 0)  # beyond the last bucket: +Inf
    assert metrics.snapshot()[(m.DURATION + "_bucket", ("+Inf",))] == 1


def test_replaced_workers_keep_counters_not_gauges() -> None:
    total: m.Snapshot = {}
    part = {(m.REQUESTS, ("GET", "200", "HTTP/1.1")): 5.0, (m.IN_FLIGHT, ()): 2.0,
            (m.DURATION + "_sum", ()): 1.5}
    m.add_into(total, part, kept_only=True)
    m.add_into(total, part, kept_only=True)
    assert total == {(m.REQUESTS, ("GET", "200", "HTTP/1.1")): 10.0,
                     (m.DURATION + "_sum", ()): 3.0}


def _example() -> m.Snapshot:
    metrics = m.Metrics()
    metrics.end(metrics.begin(), "GET", 200, "HTTP/1.1", 0.02, 0, 7)
    snapshot = metrics.snapshot()
    snapshot[(m.BACKLOG, ('odd "bind"\\\n',))] = 3.0
    return snapshot


def test_prometheus_text_parses() -> None:
    families = {f.name: f for f in text_string_to_metric_families(render(_example(), False)
                                                                  .decode())}
    histogram = families["treadle_http_request_duration_seconds"]
    buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
    assert buckets["0.01"] == 0 and buckets["0.025"] == 1 and buckets["+Inf"] == 1
    backlog = families["treadle_listen_backlog"].samples[0]
    assert backlog.labels == {"listener": 'odd "bind"\\\n'} and backlog.value == 3


def test_openmetrics_text_parses() -> None:
    text = render(_example(), True).decode()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}
    assert families["treadle_http_requests"].samples[0].value == 1


def test_accept_header() -> None:
    assert wants_openmetrics("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
    assert not wants_openmetrics("text/plain;version=0.0.4")
    assert not wants_openmetrics("application/openmetrics-text; q=0, text/plain")
    assert not wants_openmetrics("")


def test_a_slot_holds_the_last_good_snapshot() -> None:
    slot = SnapshotSlot()
    try:
        assert slot.read() == {}
        first = _example()
        assert slot.write(first)
        assert slot.read() == first
        slot.map[20] ^= 0xFF  # a torn write: the checksum fails, the last good read stands
        assert slot.read() == first
    finally:
        slot.close()
