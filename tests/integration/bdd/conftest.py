"""A study directory in a temporary folder: the demo study (its study.yaml and the consent texts it names) beside
features written by the test."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DEMO_DIR = REPO_ROOT / "studies" / "demo"

BACKGROUND = """\
  Background:
    Given subject "0101-001" is screened at site "0101" on 2026-01-05
    And the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-05
    And the "Screening" visit took place on 2026-01-05
    And the coordinator saves the "Screening" "Informed Consent" form with:
      | item   | value      |
      | ICDAT  | 2026-01-05 |
      | ICVERS | 1.0        |
"""

VITALS = """\
      | item   | value      |
      | VSDAT  | 2026-01-05 |
      | SYSBP  | {sbp}      |
      | DIABP  | 94         |
      | PULSE  | 72         |
      | WEIGHT | 84.2       |
      | HEIGHT | 176        |
"""

StudyDir = Callable[..., Path]


@pytest.fixture
def study_dir(tmp_path: Path) -> StudyDir:
    """`study_dir(name=text, ...)`: a study directory whose features/ holds those files."""

    def make(**features: str) -> Path:
        directory = tmp_path / "study"
        if not directory.exists():
            shutil.copytree(DEMO_DIR, directory, ignore=shutil.ignore_patterns("features"))
        (directory / "features").mkdir(parents=True, exist_ok=True)
        for name, text in features.items():
            (directory / "features" / f"{name}.feature").write_text(text, encoding="utf-8")
        return directory

    return make


def vitals_feature(sbp: str, expected: str) -> str:
    """One scenario: screening SBP `sbp`, then `Then the check "VS-SBP-ELIG" <expected>`."""
    return (
        "Feature: Screening vital signs\n\n"
        + BACKGROUND
        + "\n  Scenario: Screening SBP\n"
        + '    When the coordinator saves the "Screening" vital signs with:\n'
        + VITALS.format(sbp=sbp)
        + f'    Then the check "VS-SBP-ELIG" {expected}\n'
    )
