"""The three packages import one way: server -> protocol, config; never back.

protocol/ is sans-IO (no sockets, threads, clocks or logging), config/ is data and validation.
Installed, the folders are `treadle.protocol`, `treadle.config` and `treadle.server`: they name
each other relatively (`from ..protocol import x`) or as `treadle.*`, never by the bare folder
names, which belong to applications (a project's own `config` package must stay its own).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

OURS = {"protocol", "config", "server"}
FORBIDDEN = {
    "protocol": {"treadle." + name for name in OURS - {"protocol"}}
    | {"socket", "selectors", "ssl", "threading", "signal", "subprocess", "logging", "time"},
    "config": {"treadle." + name for name in OURS - {"config"}}
    | {"socket", "selectors", "ssl", "threading", "signal"},
    "server": set(),
}


def imported_names(path: Path, package: str, root: Path = ROOT) -> set[str]:
    """What `path` (a module of treadle.`package`) imports: stdlib top levels, `treadle.X`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = ["treadle", package, *path.relative_to(root / package).parent.parts]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            modules = [".".join(base + ([node.module] if node.module else []))]
            if not node.module:  # `from .. import protocol`: the names are modules
                modules = [f"{modules[0]}.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            names.add(".".join(parts[:2]) if parts[0] == "treadle" else parts[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_its_layer_allows(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in sorted(imported_names(path, package) & (FORBIDDEN[package] | OURS))
    ]
    assert offences == []


def test_the_checker_sees_forbidden_imports(tmp_path: Path) -> None:
    (tmp_path / "protocol").mkdir()
    module = tmp_path / "protocol" / "m.py"
    module.write_text("import socket\nfrom ..server.core import x\nfrom . import sibling\n"
                      "from .. import config\nimport server\n")
    names = imported_names(module, "protocol", root=tmp_path)
    assert names == {"socket", "treadle.server", "treadle.protocol", "treadle.config", "server"}
