"""A 100 MiB upload streams through wsgi.input with flat server memory."""

from __future__ import annotations

import psutil

from tests.e2e.wire import Wire

MIB = 1 << 20


def test_100_mib_upload_keeps_memory_flat(serve):
    server = serve("tests.e2e.apps_core:app")
    process = psutil.Process(server.process.pid)
    wire = Wire(server.host, server.port, timeout_s=60)
    wire.send(b"POST /upload-size HTTP/1.1\r\nHost: t\r\nContent-Length: "
              + str(100 * MIB).encode() + b"\r\n\r\n")
    baseline = process.memory_info().rss
    block = b"u" * MIB
    peak = baseline
    for number in range(100):
        wire.send(block)
        if number % 5 == 0:
            peak = max(peak, process.memory_info().rss)
    response = wire.read_response()
    peak = max(peak, process.memory_info().rss)
    assert (response.status, response.body) == (200, str(100 * MIB).encode())
    assert peak - baseline < 20 * MIB, f"server memory grew by {(peak - baseline) / MIB:.1f} MiB"
    wire.close()
