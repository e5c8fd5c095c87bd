"""Shared test helpers: where external tools are required, and how to say so."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """Return the path of command-line tool `name`.

    A missing tool fails the test in CI (CI=true) and skips it elsewhere, naming the tool.
    """
    path = shutil.which(name)
    if path is None:
        message = f"this test needs the '{name}' command, which is not installed"
        if IN_CI:
            pytest.fail(message + " (CI must install it)")
        pytest.skip(message)
    return path
