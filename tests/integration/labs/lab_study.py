"""The demo study published for lab feed tests, with one extra test (blood lead, LOINC 10368-9) so that the NIST
HL7 ORU samples, which report lead, are results of a study test rather than refused as unknown tests."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import REPO_ROOT
from trialstack.bootstrap import Platform
from trialstack.ledger.envelope import Actor
from trialstack.ledger.schema import ledger_event
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.definition_labs import LabTest
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

LEAD = LabTest(id="LEAD", name="Lead", loinc=("10368-9",), unit="ug/dL", decimals=0)


def publish_lab_study(platform: Platform) -> None:
    definition = load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")
    assert definition.labs is not None
    labs = definition.labs.model_copy(update={"tests": (*definition.labs.tests, LEAD)})
    definition = definition.model_copy(update={"labs": labs})
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(study_version(definition), "yaml", "study.yaml"))
        uow.commit()


def count_events(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ledger_event)).scalar_one())
