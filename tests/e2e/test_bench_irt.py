"""`trialstack bench irt` at a toy size: it prints minimization against random.choice as a ratio, and the time per
randomization at two numbers already allocated. No timing is asserted: the figures are ratios printed for people."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from trialstack.cli.main import app

runner = CliRunner()


def test_bench_irt_prints_the_ratio_to_random_choice_and_the_cost_at_two_sizes() -> None:
    result = runner.invoke(app, ["bench", "irt", "--subjects", "300", "--randomizations", "30"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "30 randomizations by decide_randomize + evolve" in text
    assert re.search(r"minimization with 300 allocated: [\d,.]+ randomizations/s", text), text
    assert re.search(r"random\.choice, same subjects: [\d,.]+ allocations/s", text), text
    assert re.search(r"ratio minimization / random\.choice: \d+\.\d+ \(random\.choice is [\d,]+× faster", text), text
    assert re.search(r"per randomization with 30 allocated: [\d,.]+ µs", text), text
    assert re.search(r"ratio 300 / 30 allocated: \d+\.\d\d×", text), text
    assert "Traceback" not in text


def test_bench_irt_refuses_sizes_too_small_to_compare_in_one_line() -> None:
    result = runner.invoke(app, ["bench", "irt", "--subjects", "5"])
    assert result.exit_code == 2
    assert "--subjects is at least 10" in result.output and "Traceback" not in result.output
