"""Fixtures of the study-definition tests: the demo study and a minimal valid study."""

from __future__ import annotations

from pathlib import Path

import pytest

DEMO_STUDY = Path(__file__).resolve().parents[3] / "studies" / "demo" / "study.yaml"

MINIMAL_STUDY = """\
study: {id: T-1, name: Test study, phase: "2", protocol_version: "1.0"}
schedule:
  anchor: DAY1
  visits:
    - {id: SCR, name: Screening, type: screening, day: -14, window: {early: 0, late: 13}, forms: [VS]}
    - {id: DAY1, name: Day 1, day: 1, forms: [VS]}
    - {id: WEEK2, name: Week 2, day: 15, window: {early: 2, late: 2}, forms: [VS]}
forms:
  - id: VS
    name: Vital signs
    items:
      - {id: SYSBP, label: Systolic BP, type: integer, unit: mmHg, range: {min: 60, max: 250}}
      - {id: DIABP, label: Diastolic BP, type: integer, unit: mmHg}
      - {id: VSPOS, label: Position, type: text}
edit_checks:
  - id: VS-DBP-LT-SBP
    form: VS
    item: DIABP
    expression: DIABP < SYSBP
    message: DBP must be below SBP.
"""


@pytest.fixture(scope="session")
def demo_text() -> str:
    return DEMO_STUDY.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def minimal_text() -> str:
    return MINIMAL_STUDY
