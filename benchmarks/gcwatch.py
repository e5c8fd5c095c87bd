"""The hello application (benchmarks/apps.py) with a record of the server's garbage
collections, for benchmarks/idle_clients.py: how many full passes ran while the active
client was measured, and how long each stopped the process.

`GET /gc-stats` answers the record since the last such request, as JSON:
`{"2": [collections, total_ms, longest_ms, total_cpu_ms, longest_cpu_ms], ...}`, one entry
per generation that ran. `GET /gc-full` runs one full collection and answers what it cost
and what it walked: `{"cpu_ms": ..., "wall_ms": ..., "objects": ...}` (the objects the
collector tracks, counted before). Every other path is `hello`. gc.callbacks time each collection
from its start to its end on whichever thread triggered it (every other Python thread waits:
the collector holds the interpreter lock): wall-clock time, and the thread's CPU time, which
a busy machine's preemption does not inflate.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from benchmarks.apps import hello as _hello

StartResponse = Callable[..., Any]

_lock = threading.Lock()
_started = [0.0, 0.0]  # wall clock, thread CPU time
_record: dict[int, list[float]] = {}  # generation: [count, total, longest, cpu total, longest]


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[:] = time.perf_counter(), time.thread_time()
        return
    took_ms = (time.perf_counter() - _started[0]) * 1000.0
    cpu_ms = (time.thread_time() - _started[1]) * 1000.0
    with _lock:
        entry = _record.setdefault(info["generation"], [0, 0.0, 0.0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += took_ms
        entry[2] = max(entry[2], took_ms)
        entry[3] += cpu_ms
        entry[4] = max(entry[4], cpu_ms)


gc.callbacks.append(_on_collection)


def _full_collection() -> dict[str, Any]:
    objects = len(gc.get_objects())
    wall, cpu = time.perf_counter(), time.thread_time()
    gc.collect()
    return {"cpu_ms": round((time.thread_time() - cpu) * 1000.0, 1),
            "wall_ms": round((time.perf_counter() - wall) * 1000.0, 1), "objects": objects}


def _taken() -> dict[str, Any]:
    with _lock:
        taken = {str(gen): [int(entry[0])] + [round(value, 1) for value in entry[1:]]
                 for gen, entry in sorted(_record.items())}
        _record.clear()
    return taken


def hello(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path not in ("/gc-stats", "/gc-full"):
        return _hello(environ, start_response)
    body = json.dumps(_taken() if path == "/gc-stats" else _full_collection()).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
