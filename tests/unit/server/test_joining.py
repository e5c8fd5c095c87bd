"""join_threads (server/joining.py) returns only once each ended thread's system thread is
gone, thread-local destructors included: OpenSSL runs one in every thread that used TLS, and
a process that exits while one runs can die of SIGSEGV. The destructor here is a slow one
registered with pthread_key_create, as OpenSSL registers its own."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
import time

import pytest
from treadle.server.joining import join_threads

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="/proc/self/task is Linux's")

DESTRUCTOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def test_join_waits_for_a_thread_local_destructor() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    destructor_ran = threading.Event()

    @DESTRUCTOR
    def slow_destructor(_value: int) -> None:  # runs after the Python part of the thread
        time.sleep(0.3)
        destructor_ran.set()

    key = ctypes.c_uint()
    assert libc.pthread_key_create(ctypes.byref(key), slow_destructor) == 0
    try:
        thread = threading.Thread(target=lambda: libc.pthread_setspecific(
            key, ctypes.c_void_p(1)))
        thread.start()
        assert join_threads([thread], time.monotonic() + 5)
        assert destructor_ran.is_set()
        assert not os.path.exists(f"/proc/self/task/{thread.native_id}")
    finally:
        libc.pthread_key_delete(key)


def test_a_thread_that_does_not_end_is_reported_and_left() -> None:
    release = threading.Event()
    stuck = threading.Thread(target=release.wait, daemon=True)
    done = threading.Thread(target=lambda: None)
    stuck.start()
    done.start()
    assert not join_threads([stuck, done], time.monotonic() + 0.1)
    assert not done.is_alive() and stuck.is_alive()
    release.set()
    assert join_threads([stuck], time.monotonic() + 5)
