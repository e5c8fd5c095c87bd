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


def sibling_imports(folder: Path) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports, every import statement counted
    wherever it sits (under `if TYPE_CHECKING:` and inside functions too): a type-only cycle
    is still a knot."""
    names = {path.stem for path in folder.glob("*.py")}
    own = f"treadle.{folder.name}."
    graph: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:  # `from . import x`
                    found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(own):
                found.add((node.module or "")[len(own):].split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(alias.name[len(own):].split(".")[0] for alias in node.names
                             if alias.name.startswith(own))
        graph[path.stem] = (found & names) - {path.stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (a depth-first walk)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                return path[path.index(imported):] + [imported]
            if imported not in state:
                cycle = visit(imported)
                if cycle is not None:
                    return cycle
        state[module] = 2
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle is not None:
                return cycle
    return None


def test_server_has_no_import_cycle() -> None:
    graph = sibling_imports(ROOT / "server")
    assert {"exchange", "runtime", "parking"} <= graph["http1"]  # it sees the imports
    assert find_cycle(graph) is None


def test_the_cycle_finder_sees_type_only_imports(tmp_path: Path) -> None:
    package = tmp_path / "server"
    package.mkdir()
    (package / "a.py").write_text("from .b import x\nfrom .. import protocol\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from .c import y\n")
    (package / "c.py").write_text("def f():\n    from treadle.server.a import z\n")
    graph = sibling_imports(package)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    graph["b"] = set()
    assert find_cycle(graph) is None
