"""Personal items (the demo's date of birth) through the real handlers on SQLite and PostgreSQL: never in the
ledger, read by checks and derivations, shown to the site, and crypto-shredded by erasure with the chain intact."""

from __future__ import annotations

import io

import pytest
from lxml import etree
from sqlalchemy import select

from tests.conftest import shared_data
from tests.integration.capture.conftest import COORDINATOR, DATA_MANAGER, STUDY, Site
from tests.integration.capture.test_capture_workflow import screened
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.clinical_source import CaptureClinicalData
from trialstack.capture.model import ERASED
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.errors import DomainRuleViolation, InvalidInput
from trialstack.ledger.projections import projections_checksum, rebuild
from trialstack.ledger.schema import ledger_event
from trialstack.ledger.verify import verify
from trialstack.protocol.version import StudyVersion
from trialstack.standards.odm_export import export_odm

DM = FormKey("DM", VisitKey("SCREENING"))
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}


def demographics(birth_date: str) -> dict[str, cmd.ItemInput]:
    values = {"BRTHDAT": birth_date, "SEX": "F", "CHILDPOT": "N", "RACE": "ASIAN", "ETHNIC": "NOT REPORTED"}
    return {item: cmd.ItemInput(value) for item, value in values.items()}


def payloads(platform: Platform) -> list[str]:
    with platform.engine.connect() as connection:
        return [str(row[0]) for row in connection.execute(select(ledger_event.c.payload))]


def with_birth_date(platform: Platform) -> tuple[Site, str]:
    site, subject = screened(platform)
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, DM, demographics("1961-02-17")))
    return site, subject


def test_a_date_of_birth_never_enters_the_ledger_yet_checks_and_derivations_read_it(demo: Platform) -> None:
    site, subject = with_birth_date(demo)
    assert not any("1961-02-17" in payload for payload in payloads(demo))
    casebook = site.run(handlers.load_casebook, STUDY, subject)
    assert casebook.item(DM, "BRTHDAT").value == "1961-02-17"
    assert casebook.item(DM, "AGE").value == "64", "AGE is derived from the sealed date of birth"
    wrong = site.outcome(
        handlers.save_form, STUDY, cmd.SaveForm(subject, DM, {"BRTHDAT": cmd.ItemInput("2026-02-01")}, reason="typo")
    )
    failed = {result.check_id for result in wrong.checks if result.result is False}
    assert "DM-BRTHDAT-BEFORE-IC" in failed, "the check compares the decrypted date with the consent date"
    assert not any("2026-02-01" in payload for payload in payloads(demo) if "BRTHDAT" in payload)


def test_each_change_of_a_personal_value_shows_in_the_trail_as_a_keyed_hash(demo: Platform) -> None:
    site, subject = with_birth_date(demo)
    site.outcome(handlers.save_form, STUDY, cmd.SaveForm(subject, DM, {"BRTHDAT": cmd.ItemInput("1961-02-18")}, "typo"))
    entered, changed = [e for e in site.run(_item_events, subject) if e["item"] == "BRTHDAT"]
    assert entered["value_hash"] and changed["value_hash"] and changed["previous_value_hash"] == entered["value_hash"]
    assert changed["value_hash"] != entered["value_hash"]
    assert changed["previous_value"] != entered["value"], "each sealed copy has its own vault reference"


def _item_events(uow: object, subject: str) -> list[dict[str, object]]:
    from trialstack.ledger.uow import UnitOfWork

    assert isinstance(uow, UnitOfWork)
    stream = uow.read_stream("subject", f"{STUDY}/{subject}")
    return [e.payload for e in stream if e.event_type in ("ItemValueEntered", "ItemValueChanged")]


def test_erasure_shreds_the_values_keeps_the_chain_and_the_read_models(
    demo: Platform, demo_version: StudyVersion
) -> None:
    shared_data("cdisc-odm-1.3.2-schema", "ODM1-3-2.xsd")
    _, subject = with_birth_date(demo)
    manager = Site(demo, DATA_MANAGER)
    before = projections_checksum(demo.engine, demo.wiring)
    with pytest.raises(InvalidInput, match="needs a reason"):
        manager.run(handlers.erase_personal_data, STUDY, cmd.ErasePersonalData(subject, "  "))
    assert projections_checksum(demo.engine, demo.wiring) == before
    outcome = manager.outcome(handlers.erase_personal_data, STUDY, cmd.ErasePersonalData(subject, "participant asked"))
    assert [e.event_type for e in outcome.events] == ["PersonalDataErased"]
    assert outcome.events[0].payload["items"] == [f"{DM}/BRTHDAT"] and outcome.events[0].reason == "participant asked"
    with pytest.raises(DomainRuleViolation, match="already erased"):
        manager.run(handlers.erase_personal_data, STUDY, cmd.ErasePersonalData(subject, "again"))
    demo.cache.clear()
    casebook = manager.run(handlers.load_casebook, STUDY, subject)
    assert casebook.item(DM, "BRTHDAT").erased and casebook.item(DM, "BRTHDAT").value is None
    assert casebook.item(DM, "SEX").value == "F", "clinical data stays"
    with demo.engine.connect() as connection:
        assert verify(connection).ok
    settled = projections_checksum(demo.engine, demo.wiring)
    rebuild(demo.engine, demo.wiring)
    assert projections_checksum(demo.engine, demo.wiring) == settled
    out = io.BytesIO()
    export_odm(demo_version, out, CaptureClinicalData(demo.engine, demo_version.definition, vault=demo.vault))
    birth = etree.fromstring(out.getvalue()).findall(".//odm:ItemData[@ItemOID='I.BRTHDAT']", NS)
    assert birth and {data.get("Value") for data in birth} == {ERASED}
    reasons = [data.findtext("odm:AuditRecord/odm:ReasonForChange", namespaces=NS) for data in birth]
    assert reasons[-1] == "personal data erased: participant asked"


def test_an_erased_subject_takes_no_new_personal_data(demo: Platform) -> None:
    site, subject = with_birth_date(demo)
    Site(demo, DATA_MANAGER).run(handlers.erase_personal_data, STUDY, cmd.ErasePersonalData(subject, "request"))
    with pytest.raises(DomainRuleViolation, match="was erased"):
        site.run(handlers.save_form, STUDY, cmd.SaveForm(subject, DM, {"BRTHDAT": cmd.ItemInput("1961-02-17")}, "x"))
    assert Site(demo, COORDINATOR).run(handlers.load_casebook, STUDY, subject).item(DM, "BRTHDAT").erased
