"""docs/bdd-steps.md is generated from the step library: the committed page must equal the generated one."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from trialstack.bdd.docs import steps_markdown
from trialstack.bdd.library import default_library
from trialstack.cli.bdd import app

DOCS = Path(__file__).resolve().parents[3] / "docs" / "bdd-steps.md"


def test_the_committed_step_docs_are_the_generated_ones() -> None:
    assert DOCS.read_text(encoding="utf-8") == steps_markdown(), (
        "docs/bdd-steps.md is out of date: run `trialstack bdd steps --markdown > docs/bdd-steps.md`"
    )


def test_every_step_is_documented_with_its_pattern_meaning_and_example() -> None:
    page = steps_markdown()
    for definition in default_library().definitions:
        assert f"### `{definition.pattern}`" in page
        assert definition.meaning.split(".")[0] in page.replace("\n", " ")
        assert definition.example in page


def test_the_cli_prints_the_same_page() -> None:
    result = CliRunner().invoke(app, ["steps", "--markdown"])
    assert result.exit_code == 0
    assert result.stdout == steps_markdown()


def test_the_cli_lists_patterns_with_examples() -> None:
    result = CliRunner().invoke(app, ["steps"])
    assert result.exit_code == 0
    assert "subject {string} is screened at site {string} on {date}" in result.stdout
    assert 'subject "0101-001" is screened at site "0101" on 2026-01-05' in result.stdout
