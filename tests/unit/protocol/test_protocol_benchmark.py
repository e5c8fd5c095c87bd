"""benchmarks/engine.py keeps working: every scenario gives identical events in h11 and
protocol (the benchmark refuses to time otherwise), and a tiny run prints all ratios."""

from __future__ import annotations

import pytest

from benchmarks import engine


@pytest.mark.parametrize("name", sorted(engine.SCENARIOS))
def test_scenarios_give_identical_events(name: str) -> None:
    engine.check_identical(engine.SCENARIOS[name])


def test_a_tiny_run_prints_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert engine.main(["--rounds", "1", "--time", "0.01"]) == 0
    out = capsys.readouterr().out
    for name in engine.SCENARIOS:
        assert name in out
    assert out.count("x\n") == len(engine.SCENARIOS)
