"""The README's two commands are the ones users and CI actually run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", text, re.S)
    assert block, "README.md must open with a code block of commands"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_run_and_test_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    run, test = commands
    assert "python -m treadle examples.hello:app" in run
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = readme_commands()[1]
    assert test_command in ci.splitlines(), f"{test_command!r} missing from .ci/run"


def test_readme_names_every_tool_the_tests_require() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tools = set()
    for path in (ROOT / "tests").rglob("*.py"):
        tools |= set(re.findall(r"require_tool\(\s*\"([^\"]+)\"", path.read_text(encoding="utf-8")))
    assert tools >= {"curl", "h2load", "wrk"}, tools
    missing = sorted(tool for tool in tools if f"`{tool}`" not in readme)
    assert not missing, f"README.md does not name the test tools {missing}"
