"""A small, bounded background load for signal tests: client threads sending GET requests.

Each thread opens a new connection per request (so listeners and accepts are exercised), or
with `keepalive` keeps its connection open while the server allows (a connection closed
before the answer is a failure: a stopping server must answer what its keep-alive clients
send), and records every failure with its reason; `pids` collects the `pid` of /osenv answers, which
tells which worker process served a request (`served_by` counts them).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter


class Load:
    def __init__(self, host: str, port: int, path: str = "/osenv", threads: int = 2,
                 timeout_s: float = 20.0, keepalive: bool = False) -> None:
        self.keepalive = keepalive
        self.host, self.port, self.path, self.timeout_s = host, port, path, timeout_s
        self.ok = 0
        self.failures: list[str] = []
        self.pids: set[int] = set()
        self.served_by: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout_s + 5)

    def wait_for(self, requests: int, timeout_s: float = 20.0) -> None:
        """Until `requests` more have succeeded (so the load is really flowing)."""
        target = self.ok + requests
        deadline = time.monotonic() + timeout_s
        while self.ok < target:
            assert time.monotonic() < deadline, f"load stalled: {self.failures[-3:]}"
            time.sleep(0.01)

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    raise OSError(f"status {response.status}")
                pid = json.loads(body)["pid"] if self.path.startswith("/osenv") else 0
                if not self.keepalive or response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException, ValueError) as exc:
                conn.close()
                conn = None
                with self._lock:
                    self.failures.append(repr(exc))
                time.sleep(0.05)
            else:
                with self._lock:
                    self.ok += 1
                    self.pids.add(pid)
                    self.served_by[pid] += 1
        if conn is not None:
            conn.close()
