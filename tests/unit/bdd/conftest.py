"""The demo study's names, shared by the bdd unit tests (loading the study once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialstack.bdd.names import Names
from trialstack.standards.loader import load_study_file

ROOT = Path(__file__).resolve().parents[3]
DEMO_STUDY = ROOT / "studies" / "demo" / "study.yaml"


@pytest.fixture(scope="session")
def names() -> Names:
    return Names(load_study_file(DEMO_STUDY))
