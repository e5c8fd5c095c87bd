"""Small WSGI applications written to a test's directory (for reloads, imports that fail or
take time, memory that grows): one function, so each test states only what differs."""

from __future__ import annotations

from pathlib import Path


def write_app(directory: Path, module: str, body: str, *, top: str = "",
              first: str = "") -> None:
    """Write `module`.py: an `app` answering 200 with the str expression `body` encoded;
    `top` runs at import (after `import json, os, time`), `first` at each request's start."""
    lines = ["import json, os, time", *top.splitlines(),
             "def app(environ, start_response):",
             *(f"    {line}" for line in first.splitlines()),
             f"    body = ({body}).encode()",
             "    start_response('200 OK', [('Content-Length', str(len(body)))])",
             "    return [body]"]
    (directory / f"{module}.py").write_text("\n".join(lines) + "\n")
