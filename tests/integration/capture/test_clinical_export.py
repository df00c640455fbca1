"""Capture's casebooks exported as ODM 1.3.2 clinical data: the whole audit trail, queries and signatures,
XSD-valid, on SQLite and PostgreSQL, through the real handlers."""

from __future__ import annotations

import io
from typing import Any

import pytest
from lxml import etree

from tests.conftest import shared_data
from tests.integration.capture.conftest import COORDINATOR, MONITOR, STUDY, Site
from tests.standards.conftest import assert_valid_odm_132
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.clinical_casebook import DERIVED, signature_definition_id
from trialstack.capture.clinical_source import CaptureClinicalData
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.capture.signatures import CASEBOOK_MEANING
from trialstack.ledger import store
from trialstack.ledger.envelope import Actor
from trialstack.protocol.version import StudyVersion
from trialstack.queries import commands as qcmd
from trialstack.queries import handlers as queries
from trialstack.queries.clinical import subject_queries
from trialstack.standards.odm_export import export_odm

pytestmark = pytest.mark.usefixtures("odm_xsds")
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
INVESTIGATOR = Actor("user:ivy", "investigator")
SCREENING = VisitKey("SCREENING")
VS = FormKey("VS", SCREENING)


@pytest.fixture
def odm_xsds() -> None:
    shared_data("cdisc-odm-1.3.2-schema", "ODM1-3-2.xsd")


def _casebook(platform: Platform) -> str:
    """One subject with entries, a correction, a not-done item, a corrected visit date, queries and a signature."""
    site = Site(platform, COORDINATOR)
    subject = site.screen()
    site.run(handlers.record_visit_date, STUDY, cmd.RecordVisitDate(subject, SCREENING, "2026-01-04"))
    site.run(handlers.record_visit_date, STUDY, cmd.RecordVisitDate(subject, SCREENING, "2026-01-05", "typo"))
    vitals = {"VSDAT": "2026-01-05", "SYSBP": "190", "DIABP": "95", "PULSE": "72", "WEIGHT": "80.5", "HEIGHT": "175"}
    site.run(handlers.save_form, STUDY, cmd.SaveForm(subject, VS, {k: cmd.ItemInput(v) for k, v in vitals.items()}))
    correction = {"SYSBP": cmd.ItemInput("165"), "PULSE": cmd.ItemInput(not_done_reason="device failure")}
    site.run(handlers.save_form, STUDY, cmd.SaveForm(subject, VS, correction, reason="transcription error"))
    monitor = Site(platform, MONITOR)
    opened = monitor.run(queries.open_manual_query, STUDY, "0101", qcmd.OpenQuery(subject, str(VS), "WEIGHT", "Scale?"))
    query_id = opened[0].payload["query_id"]
    site.run(queries.answer_query, STUDY, qcmd.AnswerQuery(query_id, "Calibrated scale, value confirmed."))
    signing = cmd.SignCasebook(subject, CASEBOOK_MEANING, INVESTIGATOR.id, "Ivy Investigator")
    Site(platform, INVESTIGATOR).run(handlers.sign_casebook, STUDY, signing)
    return subject


def _export(source: CaptureClinicalData, version: StudyVersion) -> Any:
    out = io.BytesIO()
    export_odm(version, out, source)
    assert_valid_odm_132(out.getvalue())
    return etree.fromstring(out.getvalue())


def _trail(subject: Any, item: str) -> list[tuple[str | None, str | None, str | None, str | None]]:
    found = subject.findall(f".//odm:ItemData[@ItemOID='I.{item}']", NS)
    return [
        (
            data.get("Value"),
            data.find("odm:AuditRecord/odm:UserRef", NS).get("UserOID"),
            data.findtext("odm:AuditRecord/odm:ReasonForChange", namespaces=NS),
            data.get("IsNull"),
        )
        for data in found
    ]


def test_the_audit_trail_queries_and_signatures_are_exported(demo: Platform, demo_version: StudyVersion) -> None:
    subject_id = _casebook(demo)
    source = CaptureClinicalData(demo.engine, demo_version.definition, queries=subject_queries, vault=demo.vault)
    Site(demo, COORDINATOR).run(handlers.screen_subject, STUDY, cmd.ScreenSubject("0102", "2026-01-05"))  # later
    root = _export(source, demo_version)
    subjects = root.findall("odm:ClinicalData/odm:SubjectData", NS)
    assert [s.get("SubjectKey") for s in subjects] == [subject_id]  # as of the moment the source was made
    subject = subjects[0]
    assert _trail(subject, "SYSBP") == [
        ("190", "user:cora", None, None),
        ("165", "user:cora", "transcription error", None),
    ]
    assert _trail(subject, "PULSE") == [
        ("72", "user:cora", None, None),
        (None, "user:cora", "not done: device failure; transcription error", "Yes"),
    ]
    assert [reason for _, _, reason, _ in _trail(subject, "BMI")] == [DERIVED]
    sysbp_notes = subject.findall(".//odm:ItemData[@ItemOID='I.SYSBP']/odm:Annotation", NS)
    assert {note.findtext("odm:Flag/odm:FlagValue", namespaces=NS) for note in sysbp_notes} == {"closed"}
    weight = subject.findall(".//odm:ItemData[@ItemOID='I.WEIGHT']/odm:Annotation/odm:Comment", NS)
    assert [(c.get("SponsorOrSite"), c.text.split(" (user:")[0].split(": ", 1)[1]) for c in weight] == [
        ("Sponsor", "Scale?"),
        ("Site", "Calibrated scale, value confirmed."),
    ]
    dates = subject.findall("odm:StudyEventData[@StudyEventOID='SE.SCREENING']/odm:Annotation/odm:Comment", NS)
    assert [c.text.split(",")[0] for c in dates] == ["visit date 2026-01-04", "visit date 2026-01-05 (was 2026-01-04)"]
    assert dates[1].text.endswith("; reason: typo")
    signature = subject.find("odm:Signature", NS)
    assert signature.find("odm:UserRef", NS).get("UserOID") == "user:ivy"
    assert signature.find("odm:SignatureRef", NS).get("SignatureOID") == signature_definition_id(CASEBOOK_MEANING)
    admin = root.find("odm:AdminData", NS)
    users = {u.get("OID"): u.findtext("odm:DisplayName", namespaces=NS) for u in admin.findall("odm:User", NS)}
    assert users == {"system:rules": None, "user:cora": None, "user:ivy": "Ivy Investigator", "user:mona": None}
    assert admin.findtext("odm:SignatureDef/odm:Meaning", namespaces=NS) == CASEBOOK_MEANING


def test_a_study_without_captured_data_exports_no_subjects(demo: Platform, demo_version: StudyVersion) -> None:
    root = _export(
        CaptureClinicalData(demo.engine, demo_version.definition, subject_queries, vault=demo.vault), demo_version
    )
    assert root.findall("odm:ClinicalData/odm:SubjectData", NS) == []
    assert root.findall("odm:AdminData/odm:User", NS) == []


def test_subjects_stream_one_casebook_at_a_time_across_pages(
    demo: Platform, demo_version: StudyVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = Site(demo, COORDINATOR)
    for site_id in ("0101", "0102", "0101"):
        site.run(handlers.screen_subject, STUDY, cmd.ScreenSubject(site_id, "2026-01-05"))
    reads: list[str] = []
    original = store.read_stream

    def counting(connection: Any, stream_type: str, stream_id: str, after_version: int = 0) -> Any:
        reads.append(stream_id)
        return original(connection, stream_type, stream_id, after_version)

    monkeypatch.setattr(store, "read_stream", counting)
    source = CaptureClinicalData(demo.engine, demo_version.definition, page_size=2, vault=demo.vault)
    subjects = source.subjects()
    first = next(subjects)
    assert (first.subject_key, reads) == ("0101-001", ["HTN-201/0101-001"])  # nothing else read yet
    assert [first.subject_key] + [s.subject_key for s in subjects] == ["0101-001", "0101-002", "0102-001"]
    assert len(reads) == 3
