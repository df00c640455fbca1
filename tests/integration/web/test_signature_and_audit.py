"""The casebook signature and the audit trail the pages show, on both backends: a signature binds the casebook's
head, a later data change invalidates it (SDV does not), and blinded readers never receive allocation events."""

from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT
from tests.consenting import consent_on_paper
from tests.e2e.web.support import Allocation
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.readmodel import latest_signature
from trialstack.capture.refs import FormKey, VisitKey, subject_stream_id
from trialstack.capture.signatures import CASEBOOK_MEANING
from trialstack.errors import DomainRuleViolation
from trialstack.ledger.envelope import Actor
from trialstack.ledger.registry import encode
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file
from trialstack.web.audit import audit_trail

STUDY = "HTN-201"
SITE = Actor("user:cora", "study_coordinator")
INVESTIGATOR = Actor("user:ivan", "investigator")
MONITOR = Actor("user:mona", "monitor")
CONSENT = FormKey("IC", VisitKey("SCREENING"))


@pytest.fixture
def subject(platform: Platform) -> str:
    """A screened subject with a dated screening visit and a saved consent form."""
    version = study_version(load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml"))
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(version, "yaml", "study.yaml"))
        uow.commit()
    with platform.unit_of_work(SITE) as uow:
        subject_id = handlers.screen_subject(uow, STUDY, cmd.ScreenSubject("0101", "2026-01-05")).subject_id
        uow.commit()
    assert subject_id is not None
    consent_on_paper(platform, STUDY, subject_id, "2026-01-05")
    with platform.unit_of_work(SITE) as uow:
        handlers.record_visit_date(uow, STUDY, cmd.RecordVisitDate(subject_id, VisitKey("SCREENING"), "2026-01-05"))
        items = {"ICDAT": cmd.ItemInput("2026-01-05"), "ICVERS": cmd.ItemInput("1.0")}
        handlers.save_form(uow, STUDY, cmd.SaveForm(subject_id, CONSENT, items))
        uow.commit()
    return subject_id


def _sign(platform: Platform, subject_id: str) -> None:
    with platform.unit_of_work(INVESTIGATOR) as uow:
        handlers.sign_casebook(
            uow, STUDY, cmd.SignCasebook(subject_id, CASEBOOK_MEANING, "user:ivan", "Ivan Investigator")
        )
        uow.commit()


def test_a_signature_stands_until_signed_data_change(platform: Platform, subject: str) -> None:
    _sign(platform, subject)
    with platform.engine.connect() as connection:
        signed = latest_signature(connection, STUDY, subject)
    assert signed is not None and signed.valid and signed.printed_name == "Ivan Investigator"
    assert len(signed.casebook_hash) == 64

    with platform.unit_of_work(MONITOR) as uow:
        handlers.verify_source_data(uow, STUDY, cmd.VerifySourceData(subject, CONSENT))
        uow.commit()
    with platform.engine.connect() as connection:
        still = latest_signature(connection, STUDY, subject)
    assert still is not None and still.valid

    change = {"ICVERS": cmd.ItemInput("1.1", reason_for_change="Wrong version transcribed")}
    with platform.unit_of_work(SITE) as uow:
        handlers.save_form(uow, STUDY, cmd.SaveForm(subject, CONSENT, change))
        uow.commit()
    with platform.engine.connect() as connection:
        broken = latest_signature(connection, STUDY, subject)
        trail = audit_trail(connection, STUDY, subject, vault=platform.vault, unblinded=False)
    assert broken is not None and not broken.valid
    assert broken.changed_by is not None
    assert {"ItemValueChanged", "SignatureInvalidated", "QueryOpened"} <= {row.event_type for row in trail}
    assert any(row.event_type == "CasebookSigned" and row.actor == "user:ivan" for row in trail)
    changed = next(row for row in trail if row.event_type == "ItemValueChanged")
    assert (changed.old, changed.new, changed.reason) == ("1.0", "1.1", "Wrong version transcribed")
    assert changed.study_version is not None and len(changed.study_version) == 64


def test_an_empty_casebook_cannot_be_signed(platform: Platform, subject: str) -> None:
    with platform.unit_of_work(SITE) as uow:
        other = handlers.screen_subject(uow, STUDY, cmd.ScreenSubject("0101", "2026-01-05")).subject_id
        uow.commit()
    assert other is not None
    with pytest.raises(DomainRuleViolation, match="no data to sign"):
        _sign(platform, other)


def test_blinded_readers_never_receive_allocation_events(platform: Platform, subject: str) -> None:
    stream = subject_stream_id(STUDY, subject)
    with platform.unit_of_work(Actor("system:irt", "system")) as uow:
        allocation = encode(Allocation(subject_id=subject, arm="ZEL"))
        uow.append(STUDY, "subject", stream, [allocation], expected_version=uow.stream_version("subject", stream))
        uow.commit()
    with platform.engine.connect() as connection:
        blinded = audit_trail(connection, STUDY, subject, vault=platform.vault, unblinded=False)
        unblinded = audit_trail(connection, STUDY, subject, vault=platform.vault, unblinded=True)
    assert all(row.event_type != Allocation.__name__ for row in blinded)
    assert [row.event_type for row in unblinded].count(Allocation.__name__) == 1
    assert len(unblinded) == len(blinded) + 1


def test_the_trail_narrows_to_a_form_and_an_item(platform: Platform, subject: str) -> None:
    with platform.engine.connect() as connection:
        form = audit_trail(connection, STUDY, subject, vault=platform.vault, unblinded=False, form=str(CONSENT))
        item = audit_trail(
            connection, STUDY, subject, vault=platform.vault, unblinded=False, form=str(CONSENT), item="ICVERS"
        )
    assert {row.form for row in form} == {str(CONSENT)}
    assert [row.item for row in item] == ["ICVERS"] * len(item) and item
