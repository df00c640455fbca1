"""Step matching and binding: patterns, examples, unknown and ambiguous steps, tables, names checked up front."""

from __future__ import annotations

import pytest

from trialstack.bdd.errors import SpecificationError
from trialstack.bdd.features import parse_feature_text
from trialstack.bdd.library import default_library
from trialstack.bdd.names import Names
from trialstack.bdd.registry import StepLibrary, compile_pattern, strip_keyword
from trialstack.capture.refs import FormKey, VisitKey

LIBRARY = default_library()


def bind(names: Names, steps: str) -> list[object]:
    feature = parse_feature_text(f"Feature: f\n  Scenario: s\n{steps}", "features/f.feature")
    assert feature is not None
    (scenario,) = LIBRARY.bind(list(feature.scenarios), names)
    return [list(step.args) for step in scenario.steps]


def problems(names: Names, steps: str) -> list[str]:
    with pytest.raises(SpecificationError) as caught:
        bind(names, steps)
    return [str(problem) for problem in caught.value.problems]


def test_every_example_binds_to_its_own_step_and_to_no_other(names: Names) -> None:
    text = "Feature: examples\n  Scenario: all\n" + "".join(
        "\n".join(f"    {line}" for line in d.example.split("\n")) + "\n" for d in LIBRARY.definitions
    )
    feature = parse_feature_text(text, "examples.feature")
    assert feature is not None
    (scenario,) = LIBRARY.bind(list(feature.scenarios), names)
    assert [step.definition for step in scenario.steps] == LIBRARY.definitions


def test_every_step_has_a_meaning_and_an_example_with_a_keyword() -> None:
    for definition in LIBRARY.definitions:
        assert definition.meaning, definition.pattern
        assert definition.example.split(" ")[0] in {"Given", "When", "Then", "And", "But"}, definition.pattern


def test_arguments_are_resolved_against_the_study(names: Names) -> None:
    (screened, visit, enters, check) = bind(
        names,
        '    Given subject "0101-001" is screened at site "0101" on 2026-01-05\n'
        '    And the "Week 2" visit took place on 2026-01-19\n'
        '    When the investigator enters Weight "80.5" on the "Day 1" vital signs\n'
        '    Then the check "VS-SBP-ELIG" fails\n',
    )
    assert screened == ["0101-001", "0101", "2026-01-05"]
    assert visit == [VisitKey("WEEK2"), "2026-01-19"]
    assert enters == ["investigator", "Weight", "80.5", FormKey("VS", VisitKey("DAY1"))]
    assert check == ["VS-SBP-ELIG"]


def test_keywords_and_extra_spaces_do_not_matter(names: Names) -> None:
    (first, second) = bind(names, "    Then today is   2026-01-19\n    But today is 2026-01-20\n")
    assert first == ["2026-01-19"] and second == ["2026-01-20"]


def test_an_unknown_step_names_file_line_and_the_three_closest_steps(names: Names) -> None:
    (problem,) = problems(names, '    Given subject "0101-001" was screened at site "0101" on 2026-01-05\n')
    lines = problem.splitlines()
    assert lines[0] == (
        'features/f.feature:3: unknown step "subject "0101-001" was screened at site "0101" on 2026-01-05"; '
        "closest known:"
    )
    assert len(lines) == 4
    assert lines[1].strip() == "subject {string} is screened at site {string} on {date}"


def test_suggestions_rank_the_nearest_pattern_first() -> None:
    assert LIBRARY.suggestions("the check VS-SBP-ELIG fail")[0] == "the check {check} fails"
    assert len(LIBRARY.suggestions("anything at all")) == 3


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ('Given the "Week 3" visit took place on 2026-01-19', 'unknown visit "Week 3" in HTN-201 (closest: '),
        ('When the coordinator enters SBP 190 on the "Week 2" vitals sings', 'unknown form "vitals sings"'),
        ('When the coordinator enters SBPX 190 on the "Week 2" vital signs', 'unknown item "SBPX": no form of HTN-201'),
        ('Then the check "VS-SBP-ELIGIBLE" fails', 'unknown edit check "VS-SBP-ELIGIBLE" in HTN-201 (closest: VS-SBP'),
        ('Then the subject cannot be enrolled because "IN09"', 'unknown eligibility criterion "IN09"'),
        ('Given the "Week 2" visit took place on 2026-02-30', "2026-02-30 is not a real date"),
        ('When the coordinator enters LBDAT 2026-01-05 on the "Week 2" laboratory', "is not collected at Week 2"),
    ],
)
def test_unknown_names_are_reported_before_anything_runs(names: Names, step: str, message: str) -> None:
    (problem,) = problems(names, f"    {step}\n")
    assert problem.startswith("features/f.feature:3: ")
    assert message in problem


def test_every_problem_of_a_scenario_is_reported_at_once(names: Names) -> None:
    found = problems(names, '    Given the "Week 3" visit took place on 2026-01-19\n    Then nothing happens\n')
    assert [p.split(": ")[0] for p in found] == ["features/f.feature:3", "features/f.feature:4"]


def test_a_table_step_needs_its_table_and_its_columns(names: Names) -> None:
    save = '    When the coordinator saves the "Screening" vital signs with:\n'
    assert "needs a data table: | item | value |" in problems(names, save)[0]
    wrong = save + "      | item | amount |\n      | SBP | 190 |\n"
    assert "data table columns item, amount: expected item, value, unit, not done" in problems(names, wrong)[0]
    unknown = save + "      | item | value |\n      | SBPX | 190 |\n"
    assert 'unknown item "SBPX"' in problems(names, unknown)[0]
    extra = "    Then no query is open\n      | item |\n      | x |\n"
    assert "takes no data table" in problems(names, extra)[0]


def test_an_ambiguous_step_lists_the_patterns_it_matches(names: Names) -> None:
    library = StepLibrary()
    library.step("the {words} is open", example="Then the door is open", topic="t")(lambda world, what: None)
    library.step("the door is {words}", example="Then the door is open", topic="t")(lambda world, what: None)
    feature = parse_feature_text("Feature: f\n  Scenario: s\n    Then the door is open\n", "f.feature")
    assert feature is not None
    with pytest.raises(SpecificationError, match=r"ambiguous step .* matches: the \{words\} is open; the door is"):
        library.bind(list(feature.scenarios), names)


def test_a_pattern_with_an_unknown_placeholder_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"unknown placeholder \{colour\}"):
        compile_pattern("the {colour} form")


def test_strip_keyword_keeps_only_the_step_text() -> None:
    assert strip_keyword("Given the coordinator saves AE.1 with:\n  | item | value |") == (
        "the coordinator saves AE.1 with:"
    )
