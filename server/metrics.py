"""The metrics registry of one process: what requests, connections and the pool did.

Cheap on the request path and safe without the interpreter lock: each thread that runs
requests counts into a shard of its own (a plain object found through threading.local), so a
request takes no lock; a scrape sums the shards (a value read while a thread adds to it is at
most one request old). Rarer events (rejections) take one lock.

A snapshot is data, not objects: `{(series, label values): value}`, where series is a family
name or a histogram's `_bucket` (per bucket, not cumulative), `_sum` or `_count`. Snapshots
of several workers add up key by key (server/metricshub.py), and are rendered in the
Prometheus text format or OpenMetrics (server/metricstext.py). FAMILIES names every metric,
its type, labels and help: docs/observability.md describes the same list.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

Snapshot = dict[tuple[str, tuple[str, ...]], float]


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # counter, gauge or histogram
    labels: tuple[str, ...]
    help: str

    @property
    def kept_when_replaced(self) -> bool:
        """A replaced worker's values stay in the totals (counters, histograms), or go
        with it (gauges: what it had open or running is gone)."""
        return self.kind != "gauge"


# Request durations, in seconds: 1 ms to 10 s.
DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                      10.0)
BUCKET_LABELS = tuple(f"{bound:g}" for bound in DURATION_BUCKETS_S) + ("+Inf",)

REQUESTS = "treadle_http_requests_total"
DURATION = "treadle_http_request_duration_seconds"
IN_FLIGHT = "treadle_http_requests_in_flight"
REQUEST_BYTES = "treadle_http_request_body_bytes_total"
RESPONSE_BYTES = "treadle_http_response_body_bytes_total"
CONNECTIONS_OPEN = "treadle_connections_open"
CONNECTIONS = "treadle_connections_total"
REJECTED = "treadle_rejected_total"
THREADS = "treadle_worker_threads"
BUSY = "treadle_worker_busy_seconds_total"
BACKLOG = "treadle_listen_backlog"
WORKERS = "treadle_workers"
RESTARTS = "treadle_worker_restarts_total"

FAMILIES: tuple[Family, ...] = (
    Family(REQUESTS, "counter", ("method", "code", "protocol"),
           "Requests answered (or given up), by method, status code and HTTP version."),
    Family(DURATION, "histogram", (),
           "Seconds from calling the application to the end of its response."),
    Family(IN_FLIGHT, "gauge", (), "Requests inside the application or sending now."),
    Family(REQUEST_BYTES, "counter", (), "Request body bytes the applications read."),
    Family(RESPONSE_BYTES, "counter", (), "Response body bytes sent (heads not counted)."),
    Family(CONNECTIONS_OPEN, "gauge", ("protocol",), "Client connections open now."),
    Family(CONNECTIONS, "counter", (), "Client connections accepted."),
    Family(REJECTED, "counter", ("reason",),
           "Connections or requests refused: bad_request, limits, timeout, tls_handshake, "
           "evicted."),
    Family(THREADS, "gauge", ("state",), "Pool threads, busy with a request or idle."),
    Family(BUSY, "counter", (), "Seconds pool threads spent running requests."),
    Family(BACKLOG, "gauge", ("listener",),
           "Connections waiting in a listener's accept queue (Linux TCP listeners)."),
    Family(WORKERS, "gauge", (), "Worker processes serving (1 without an arbiter)."),
    Family(RESTARTS, "counter", ("reason",),
           "Worker processes replaced: timeout, max_requests, memory, crash, reload."),
)
BY_NAME = {family.name: family for family in FAMILIES}

# Label values stay few: a method outside this set is "other", a version outside it "other".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                           "TRACE"})
KNOWN_PROTOCOLS = frozenset({"HTTP/1.0", "HTTP/1.1", "HTTP/2"})
REJECT_REASONS = ("bad_request", "limits", "timeout", "tls_handshake", "evicted", "min_rate",
                  "proxy_protocol")
LIMIT_STATUSES = frozenset({413, 414, 431})
CLIENT_GONE_CODE = 499  # nginx's label for "the client left before the response"


def rejection_of(status: int) -> str:
    """The rejected_total reason of an error status the server answered by itself."""
    return "limits" if status in LIMIT_STATUSES else "bad_request"


class Shard:
    """One thread's counts; only that thread writes them."""

    __slots__ = ("requests", "buckets", "duration_sum_s", "started", "request_bytes",
                 "response_bytes")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int, str], int] = {}
        self.buckets = [0] * (len(DURATION_BUCKETS_S) + 1)
        self.duration_sum_s = 0.0
        self.started = 0  # (those finished are the histogram's count)
        self.request_bytes = 0
        self.response_bytes = 0


class Metrics:
    """The process's registry; `on_request` is called after each request when set (statsd)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._shards: list[Shard] = []
        self._rejected = dict.fromkeys(REJECT_REASONS, 0)
        self.on_request: Any = None  # (method, code, duration_s) -> None

    def shard(self) -> Shard:
        """The calling thread's shard (made on its first request)."""
        try:
            shard: Shard = self._local.shard
        except AttributeError:
            shard = self._local.shard = Shard()
            with self._lock:
                self._shards.append(shard)
        return shard

    def begin(self) -> Shard:
        shard = self.shard()
        shard.started += 1
        return shard

    def end(self, shard: Shard, method: str, code: int, protocol: str, duration_s: float,
            request_bytes: int, response_bytes: int) -> None:
        """A request ended (with `code`, or CLIENT_GONE_CODE), `duration_s` after begin."""
        if method not in KNOWN_METHODS:  # a client's token: bounded before it becomes a key
            method = "other"
        if protocol not in KNOWN_PROTOCOLS:
            protocol = "other"
        key = (method, code, protocol)
        requests = shard.requests
        requests[key] = requests.get(key, 0) + 1
        shard.buckets[bisect_left(DURATION_BUCKETS_S, duration_s)] += 1
        shard.duration_sum_s += duration_s
        shard.request_bytes += request_bytes
        shard.response_bytes += response_bytes
        if self.on_request is not None:
            self.on_request(method, code, duration_s)

    def rejected(self, reason: str) -> None:
        with self._lock:
            self._rejected[reason] += 1

    def snapshot(self) -> Snapshot:
        """Every series of this registry, summed over the threads."""
        with self._lock:
            shards = list(self._shards)
            out: Snapshot = {(REJECTED, (reason,)): float(count)
                             for reason, count in self._rejected.items()}
        buckets = [0] * (len(DURATION_BUCKETS_S) + 1)
        duration_s = 0.0
        in_flight = request_bytes = response_bytes = 0
        for shard in shards:
            for (method, code, protocol), count in list(shard.requests.items()):
                key = (REQUESTS, (method, str(code), protocol))
                out[key] = out.get(key, 0.0) + count
            for index, count in enumerate(shard.buckets):
                buckets[index] += count
            duration_s += shard.duration_sum_s
            in_flight += shard.started - sum(shard.buckets)
            request_bytes += shard.request_bytes
            response_bytes += shard.response_bytes
        for label, count in zip(BUCKET_LABELS, buckets, strict=True):
            out[(DURATION + "_bucket", (label,))] = float(count)
        out[(DURATION + "_sum", ())] = duration_s
        out[(DURATION + "_count", ())] = float(sum(buckets))
        out[(IN_FLIGHT, ())] = float(max(0, in_flight))
        out[(REQUEST_BYTES, ())] = float(request_bytes)
        out[(RESPONSE_BYTES, ())] = float(response_bytes)
        return out


def family_of(series: str) -> Family | None:
    """The family a series belongs to (a histogram's _bucket/_sum/_count included)."""
    family = BY_NAME.get(series)
    if family is None:
        for suffix in ("_bucket", "_sum", "_count"):
            if series.endswith(suffix):
                family = BY_NAME.get(series[: -len(suffix)])
                break
    return family


def add_into(total: Snapshot, part: Snapshot, kept_only: bool = False) -> None:
    """Add `part` into `total` key by key; `kept_only`: counters and histograms only (what
    a replaced worker leaves in the totals)."""
    for key, value in part.items():
        if kept_only:
            family = family_of(key[0])
            if family is None or not family.kept_when_replaced:
                continue
        total[key] = total.get(key, 0.0) + value
