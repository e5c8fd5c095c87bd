"""The three packages import one way: server -> protocol, config; never back.

protocol/ is sans-IO (no sockets, threads, clocks or logging), config/ is data and validation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

OURS = {"protocol", "config", "server"}
FORBIDDEN = {
    "protocol": OURS - {"protocol"}
    | {"socket", "selectors", "ssl", "threading", "signal", "subprocess", "logging", "time"},
    "config": OURS - {"config"} | {"socket", "selectors", "ssl", "threading", "signal"},
}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_its_layer_allows(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in sorted(imported_top_levels(path) & FORBIDDEN[package])
    ]
    assert offences == []


def test_the_checker_sees_forbidden_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import socket\nfrom server.core import x\nfrom . import sibling\n")
    assert imported_top_levels(module) == {"socket", "server"}
