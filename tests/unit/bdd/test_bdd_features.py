"""Feature files: Gherkin parsed by gherkin-official, pickles mapped back to file lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialstack.bdd.errors import SpecificationError
from trialstack.bdd.features import load_features, parse_feature_text

FEATURE = """\
@uat
Feature: Vital signs
  Free text the parser keeps as the description.

  Background:
    Given subject "0101-001" is screened at site "0101" on 2026-01-05

  Scenario: One save
    When the coordinator saves the "Screening" vital signs with:
      | item  | value |
      | SYSBP | 190   |
    Then the check "VS-SBP-ELIG" fails

  Scenario Outline: <item> out of range
    When the coordinator corrects <item> to <value> on the "Screening" vital signs because "typo"
    And the check "<check>" fails

    Examples: blood pressure
      | item  | value | check          |
      | SYSBP | 260   | VS-SYSBP-RANGE |
      | DIABP | 25    | VS-DIABP-RANGE |

  Rule: repeated names get an example number
    Scenario Outline: same name
      Then the subject is <status>

      Examples:
        | status   |
        | enrolled |
        | withdrawn |
"""


def test_backgrounds_outlines_and_rules_become_scenarios_with_their_lines() -> None:
    feature = parse_feature_text(FEATURE, "features/vs.feature")
    assert feature is not None
    assert feature.name == "Vital signs" and feature.description == "Free text the parser keeps as the description."
    names = [s.name for s in feature.scenarios]
    assert names == ["One save", "SYSBP out of range", "DIABP out of range", "same name", "same name (example 2)"]
    first = feature.scenarios[0]
    assert [str(step.location) for step in first.steps] == [
        "features/vs.feature:6",
        "features/vs.feature:9",
        "features/vs.feature:12",
    ]
    assert first.tags == ("@uat",)
    assert [step.kind for step in first.steps] == ["Context", "Action", "Outcome"]


def test_an_outline_row_is_substituted_and_located_at_its_examples_line() -> None:
    feature = parse_feature_text(FEATURE, "vs.feature")
    assert feature is not None
    outline = feature.scenarios[2]
    assert str(outline.location) == "vs.feature:14 (example at line 21)"
    step = outline.steps[1]
    assert step.text == 'the coordinator corrects DIABP to 25 on the "Screening" vital signs because "typo"'
    assert step.location.line == 15 and step.location.example_line == 21
    assert str(outline.steps[2]) == 'And the check "VS-DIABP-RANGE" fails'
    assert outline.steps[2].kind == "Action"


def test_data_tables_keep_their_header() -> None:
    feature = parse_feature_text(FEATURE, "vs.feature")
    assert feature is not None
    table = feature.scenarios[0].steps[1].table
    assert table is not None
    assert table.header == ("item", "value") and table.records() == [{"item": "SYSBP", "value": "190"}]


def test_a_doc_string_is_kept() -> None:
    text = 'Feature: f\n  Scenario: s\n    Given a note:\n      """\n      two\n      lines\n      """\n'
    feature = parse_feature_text(text, "f.feature")
    assert feature is not None
    assert feature.scenarios[0].steps[0].doc_string == "two\nlines"


def test_a_syntax_error_names_the_file_and_the_line() -> None:
    text = "Feature: f\n  Scenario: s\n    Given a step\n    this line is not Gherkin\n"
    with pytest.raises(SpecificationError) as caught:
        parse_feature_text(text, "features/broken.feature")
    (problem,) = caught.value.problems
    assert problem.location is not None and (problem.location.file, problem.location.line) == (
        "features/broken.feature",
        4,
    )
    assert "Gherkin syntax error" in problem.message and "this line is not Gherkin" in problem.message
    assert str(problem).startswith("features/broken.feature:4: Gherkin syntax error")


def test_a_file_without_a_feature_is_ignored() -> None:
    assert parse_feature_text("# only a comment\n", "empty.feature") is None


def test_load_features_reports_the_syntax_errors_of_every_file_at_once(tmp_path: Path) -> None:
    features = tmp_path / "features"
    (features / "sub").mkdir(parents=True)
    (features / "a.feature").write_text("Feature: a\n  Scenario: s\n    Given x\n  nonsense here\n")
    (features / "sub" / "b.feature").write_text("Feature: b\n  Scenario: s\n    Given x\n  also wrong\n")
    (features / "c.feature").write_text("Feature: c\n  Scenario: fine\n    Given x\n")
    with pytest.raises(SpecificationError) as caught:
        load_features(features, relative_to=tmp_path)
    places = [(p.location.file, p.location.line) for p in caught.value.problems if p.location]
    assert places == [("features/a.feature", 4), ("features/sub/b.feature", 4)]


def test_load_features_reads_files_in_path_order(tmp_path: Path) -> None:
    (tmp_path / "b.feature").write_text("Feature: second\n  Scenario: s\n    Given x\n")
    (tmp_path / "a.feature").write_text("Feature: first\n  Scenario: s\n    Given x\n")
    assert [f.name for f in load_features(tmp_path)] == ["first", "second"]
