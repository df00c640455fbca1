"""The `labs` section: tests, ranges, laboratories, expected samples; every mistake reported at its place (units and
CTCAE terms included); the age band keeps its `from`/`to` keys through the canonical JSON."""

from __future__ import annotations

import json

import pytest

from tests.unit.protocol.conftest import DEMO_STUDY
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.version import definition_from_canonical_json, study_version
from trialstack.protocol.yaml_loader import check_study_yaml, load_study_yaml

VALID = """
labs:
  tests:
    - {id: K, name: Potassium, loinc: ["2823-3"], unit: mmol/L, ctcae: [Hyperkalemia], local_item: LB.K}
    - {id: CREAT, name: Creatinine, loinc: ["2160-0"], unit: umol/L, molar_mass: 113.12, ctcae: [Creatinine increased]}
    - {id: HGB, name: Hemoglobin, unit: g/L, ctcae: [Anemia]}
  ranges:
    - {test: K, low: 3.5, high: 5.1}
    - {test: HGB, sex: F, age: {from: 65, to: 120}, low: 110, high: 150, source: CENTRAL}
  sources:
    - {id: CENTRAL, name: Central, codes: {K: [POT]}}
  expected: {visits: [SCREENING, WEEK4]}
"""


def _with_labs(labs: str) -> str:
    demo = DEMO_STUDY.read_text(encoding="utf-8")
    return demo[: demo.index("\nlabs:")] + "\n" + labs


def _problems(labs: str) -> list[str]:
    return [
        f"{p.pointer}: {p.message}" for p in check_study_yaml(_with_labs(labs), base_dir=DEMO_STUDY.parent).problems
    ]


def test_a_valid_section_loads_and_its_age_band_survives_the_canonical_json() -> None:
    definition: StudyDefinition = load_study_yaml(_with_labs(VALID), base_dir=DEMO_STUDY.parent)
    assert definition.labs is not None and [t.id for t in definition.labs.tests] == ["K", "CREAT", "HGB"]
    version = study_version(definition)
    band = json.loads(version.canonical_json)["labs"]["ranges"][1]["age"]
    assert band == {"from": 65, "to": 120}
    assert study_version(definition_from_canonical_json(version.canonical_json)).hash == version.hash


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("unit: mmol/L, ctcae", "unit: furlongs, ctcae"), "/labs/tests/0/unit: unknown unit 'furlongs'"),
        (("[Hyperkalemia]", "[Hyperkalaemia]"), "/labs/tests/0/ctcae/0: no CTCAE v5.0 lab grading for 'Hyperkalaemia'"),
        (("unit: g/L, ctcae", "unit: mmol/L, ctcae"), "/labs/tests/2/ctcae/0: Anemia is graded in g/dL"),
        (('loinc: ["2160-0"]', 'loinc: ["2823-3"]'), "/labs/tests/1/loinc/0: LOINC 2823-3 already maps to test K"),
        (("local_item: LB.K", "local_item: LB.POTASSIUM"), "/labs/tests/0/local_item: form LB has no item 'POTASSIUM'"),
        (("{test: K, low", "{test: NA, low"), "/labs/ranges/0/test: unknown lab test 'NA'"),
        (("source: CENTRAL}", "source: LOCAL}"), "/labs/ranges/1/source: unknown laboratory 'LOCAL'"),
        (("codes: {K: [POT]}", "codes: {NA: [SOD]}"), "/labs/sources/0/codes/NA: unknown lab test 'NA'"),
        (("[SCREENING, WEEK4]", "[SCREENING, WEEK5]"), "/labs/expected/visits/1: unknown visit 'WEEK5'"),
        (
            ("{test: K, low: 3.5, high: 5.1}", "{test: K, low: 5.1, high: 3.5}"),
            "/labs/ranges/0: high 3.5 is below low 5.1",
        ),
    ],
)
def test_each_mistake_is_reported_at_its_place(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in VALID
    problems = _problems(VALID.replace(old, new, 1))
    assert any(problem.startswith(expected) for problem in problems), problems
