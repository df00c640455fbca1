"""`diff_definitions` states what an amendment changes, entity by entity, as text and as JSON."""

from __future__ import annotations

import json

import pytest

from tests.unit.protocol.conftest import DEMO_STUDY
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.diff import ChangeKind, diff_definitions
from trialstack.protocol.yaml_loader import load_study_yaml

WEEK16 = """\
    - id: WEEK16
      name: Week 16 / Follow-up
      epoch: TREATMENT
      day: 113
      window: {early: 7, late: 7}
      forms: [VS]
    - id: UNSCHED
"""

EX07 = """\
    - id: EX07
      kind: exclusion
      text: Use of any other antihypertensive drug after screening.
      expression: IEEXC02 == "N"
randomization:
"""


def amend(text: str) -> str:
    """Protocol amendment 1: one visit more, a wider window, a new item and criterion, ICF version 2.0."""
    replacements = [
        ('protocol_version: "1.0"', 'protocol_version: "2.0"'),
        ("      day: 57\n      window: {early: 5, late: 5}", "      day: 57\n      window: {early: 7, late: 5}"),
        ("    - id: UNSCHED\n", WEEK16),
        ("range: {min: 60, max: 250}", "range: {min: 60, max: 260}"),
        (
            "      - id: HEIGHT\n",
            "      - id: SPO2\n        label: Oxygen saturation\n        type: integer\n        unit: '%'\n"
            "      - id: HEIGHT\n",
        ),
        ("randomization:\n", EX07),
        (
            '      - version: "1.0"\n        effective: 2026-01-05',
            '      - version: "2.0"\n        effective: 2026-01-05',
        ),
    ]
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    start = text.index("  - id: VS-PP-PLAUSIBLE")
    end = text.index("  - id: VS-DAT-VISIT")
    return text[:start] + text[end:]


@pytest.fixture(scope="module")
def versions(demo_text: str) -> tuple[StudyDefinition, StudyDefinition]:
    return load_study_yaml(demo_text, base_dir=DEMO_STUDY.parent), load_study_yaml(
        amend(demo_text), base_dir=DEMO_STUDY.parent
    )


def _changes(versions: tuple[StudyDefinition, StudyDefinition]) -> dict[tuple[str, str], tuple[str, dict[str, object]]]:
    diff = diff_definitions(*versions)
    return {
        (change.entity, change.id): (change.kind.value, {f.field: (f.old, f.new) for f in change.fields})
        for change in diff.changes
    }


def test_identical_definitions_have_no_changes(demo_text: str) -> None:
    definition = load_study_yaml(demo_text, base_dir=DEMO_STUDY.parent)
    assert diff_definitions(definition, definition).is_empty


def test_amendment_lists_each_change_with_old_and_new_values(versions: tuple[StudyDefinition, StudyDefinition]) -> None:
    changes = _changes(versions)
    assert changes == {
        ("study", "study"): ("changed", {"protocol_version": ("1.0", "2.0")}),
        ("visit", "WEEK8"): ("changed", {"window": ({"early": 5, "late": 5}, {"early": 7, "late": 5})}),
        ("visit", "WEEK16"): ("added", {}),
        ("item", "VS.SPO2"): ("added", {}),
        ("item", "VS.SYSBP"): (
            "changed",
            {
                "range": (
                    {"min": 60, "max": 250, "action": "query", "message": None},
                    {"min": 60, "max": 260, "action": "query", "message": None},
                )
            },
        ),
        ("edit_check", "VS-PP-PLAUSIBLE"): ("removed", {}),
        ("eligibility_criterion", "EX07"): ("added", {}),
        ("consent_version", "ICF 2.0"): ("added", {}),
        ("consent_version", "ICF 1.0"): ("removed", {}),
    }


def test_diff_is_json(versions: tuple[StudyDefinition, StudyDefinition]) -> None:
    data = diff_definitions(*versions).to_json()
    assert json.loads(json.dumps(data)) == data
    assert (data["old"], data["new"]) == ("1.0", "2.0")
    assert {"entity": "consent_version", "id": "ICF 2.0", "change": "added"} in data["changes"]


def test_reordering_is_not_a_change(demo_text: str) -> None:
    definition = load_study_yaml(demo_text, base_dir=DEMO_STUDY.parent)
    reordered = definition.model_copy(
        update={"forms": tuple(reversed(definition.forms)), "edit_checks": tuple(reversed(definition.edit_checks))}
    )
    assert diff_definitions(definition, reordered).is_empty


def test_removed_and_added_forms(demo_text: str) -> None:
    definition = load_study_yaml(demo_text, base_dir=DEMO_STUDY.parent)
    fewer = definition.model_copy(update={"forms": definition.forms[:-1]})
    diff = diff_definitions(definition, fewer)
    assert [(c.entity, c.id, c.kind) for c in diff.changes] == [("form", "DS", ChangeKind.REMOVED)]
    assert [(c.entity, c.id, c.kind) for c in diff_definitions(fewer, definition).changes] == [
        ("form", "DS", ChangeKind.ADDED)
    ]
