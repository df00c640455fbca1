"""`trialstack bench rules` without its comparison libraries: one line naming what to install, not a traceback."""

from __future__ import annotations

import importlib
import sys
import tomllib

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO_ROOT
from trialstack.cli.main import app, load_benchmark

runner = CliRunner()


@pytest.mark.parametrize(("module", "package"), [("celpy", "cel-python"), ("simpleeval", "simpleeval")])
def test_bench_rules_names_the_missing_package_and_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, package: str
) -> None:
    monkeypatch.delitem(sys.modules, "benchmarks.rules_bench", raising=False)
    monkeypatch.setitem(sys.modules, module, None)  # `import <module>` now raises ImportError
    result = runner.invoke(app, ["bench", "rules", "--states", "10"])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"{package} is not installed" in result.output
    assert "pip install 'trialstack[dev]'" in result.output
    assert "pip install simpleeval cel-python" in result.output


def test_the_named_extra_really_holds_both_libraries_and_the_benchmark_imports_with_them() -> None:
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    dev = " ".join(extras["dev"])
    assert "simpleeval" in dev and "cel-python" in dev
    bench = load_benchmark("rules_bench")
    assert importlib.reload(bench).KleeneEval is not None
