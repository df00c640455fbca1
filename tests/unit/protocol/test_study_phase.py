"""`study.phase` is optional: a study without one loads, and leaving it out changes no existing hash."""

from __future__ import annotations

import json

from tests.unit.protocol.conftest import MINIMAL_STUDY
from trialstack.protocol.definition import StudyPhase
from trialstack.protocol.version import study_version
from trialstack.protocol.yaml_loader import load_study_yaml

WITHOUT_PHASE = MINIMAL_STUDY.replace('phase: "2", ', "")


def test_a_study_without_a_phase_loads_and_leaves_it_out_of_its_canonical_json() -> None:
    definition = load_study_yaml(WITHOUT_PHASE)
    assert definition.study.phase is None
    study = json.loads(study_version(definition).canonical_json)["study"]
    assert study == {"id": "T-1", "name": "Test study", "protocol_version": "1.0"}


def test_a_declared_phase_is_hashed_as_before() -> None:
    definition = load_study_yaml(MINIMAL_STUDY)
    assert definition.study.phase is StudyPhase.PHASE_2
    study = json.loads(study_version(definition).canonical_json)["study"]
    assert study == {"id": "T-1", "name": "Test study", "phase": "2", "protocol_version": "1.0"}
    assert study_version(definition).hash != study_version(load_study_yaml(WITHOUT_PHASE)).hash
