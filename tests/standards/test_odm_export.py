"""ODM 1.3.2 export of captured data: audit trails, signatures and queries, XSD-valid, in flat memory."""

from __future__ import annotations

import io
import tracemalloc
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import pytest
from lxml import etree

from tests.conftest import REPO_ROOT
from tests.standards.clinical_fakes import T0, DemoClinicalData, demo_subject
from tests.standards.conftest import assert_valid_odm_132
from trialstack.protocol.version import StudyVersion, study_version
from trialstack.standards.clinical import AuditEntry, FormRecord, ItemRecord, SubjectRecord, VisitRecord
from trialstack.standards.loader import load_study_file
from trialstack.standards.odm_export import ExportError, export_odm

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

pytestmark = pytest.mark.usefixtures("odm_xsds")
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}


@pytest.fixture(scope="module")
def demo() -> StudyVersion:
    return study_version(load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml"))


def _export(version: StudyVersion, source: DemoClinicalData) -> etree._Element:
    out = io.BytesIO()
    export_odm(version, out, source, created_at=T0)
    assert_valid_odm_132(out.getvalue())
    return etree.fromstring(out.getvalue())


def test_clinical_data_is_transactional_with_the_full_audit_trail(demo: StudyVersion) -> None:
    root = _export(demo, DemoClinicalData(2))
    assert (root.get("FileType"), root.get("Granularity")) == ("Transactional", "All")
    subjects = root.findall("odm:ClinicalData/odm:SubjectData", NS)
    assert [s.get("SubjectKey") for s in subjects] == ["0101-001", "0101-002"]
    sysbp = subjects[0].findall(".//odm:ItemData[@ItemOID='I.SYSBP']", NS)
    assert [(d.get("TransactionType"), d.get("Value")) for d in sysbp] == [("Insert", "190"), ("Update", "165")]
    change = sysbp[1].find("odm:AuditRecord", NS)
    assert change is not None
    assert change.findtext("odm:ReasonForChange", namespaces=NS) == "transcription error"
    assert change.findtext("odm:DateTimeStamp", namespaces=NS) == "2026-01-05T10:00:00+00:00"
    assert change.find("odm:UserRef", NS).get("UserOID") == "u.coord"  # type: ignore[union-attr]
    assert subjects[0].find(".//odm:ItemData[@ItemOID='I.HEIGHT']", NS) is None  # never entered, nothing to say


def test_signatures_keep_their_history_and_queries_become_annotations(demo: StudyVersion) -> None:
    subject = _export(demo, DemoClinicalData(1)).find("odm:ClinicalData/odm:SubjectData", NS)
    assert subject is not None
    assert subject.find("odm:Signature/odm:SignatureRef", NS).get("SignatureOID") == "SD.PI"  # type: ignore[union-attr]
    forms = subject.findall("odm:StudyEventData[@StudyEventOID='SE.SCREENING']/odm:FormData", NS)
    assert [f.get("TransactionType") for f in forms] == ["Context", "Insert"]
    stamps = [f.findtext("odm:Signature/odm:DateTimeStamp", namespaces=NS) for f in forms]
    assert stamps == ["2026-01-05T09:30:00+00:00", "2026-01-05T11:00:00+00:00"]
    notes = subject.findall(".//odm:ItemData[@TransactionType='Update']/odm:Annotation", NS)
    assert [n.find("odm:Comment", NS).get("SponsorOrSite") for n in notes] == ["Sponsor", "Site"]  # type: ignore[union-attr]
    assert {n.findtext("odm:Flag/odm:FlagValue", namespaces=NS) for n in notes} == {"answered"}
    logs = subject.findall("odm:StudyEventData[@StudyEventOID='SE.LOG_FORMS']/odm:FormData", NS)
    assert [f.get("FormRepeatKey") for f in logs] == ["1", "2"]


def test_visit_dates_and_their_queries_are_site_and_sponsor_annotations_on_the_visit(demo: StudyVersion) -> None:
    subject = _export(demo, DemoClinicalData(1)).find("odm:ClinicalData/odm:SubjectData", NS)
    assert subject is not None
    notes = subject.findall("odm:StudyEventData[@StudyEventOID='SE.SCREENING']/odm:Annotation", NS)
    assert [n.get("SeqNum") for n in notes] == ["1", "2", "3", "4"]
    comments = [n.find("odm:Comment", NS) for n in notes]
    assert [c.get("SponsorOrSite") for c in comments if c is not None] == ["Site", "Site", "Sponsor", "Sponsor"]
    assert notes[0].findtext("odm:Comment", namespaces=NS) == (
        "visit date 2026-01-04, recorded by u.coord at 2026-01-05T09:00:00+00:00"
    )
    assert notes[1].findtext("odm:Comment", namespaces=NS) == (
        "visit date 2026-01-05 (was 2026-01-04), recorded by u.coord at 2026-01-05T12:00:00+00:00; "
        "reason: wrong day typed"
    )
    assert notes[2].findtext("odm:Flag/odm:FlagValue", namespaces=NS) == "closed"
    unscheduled = subject.find("odm:StudyEventData[@StudyEventOID='SE.UNSCHED']", NS)
    assert unscheduled is not None and unscheduled.find("odm:Annotation", NS) is None


def test_admin_data_declares_users_sites_and_signature_meanings(demo: StudyVersion) -> None:
    admin = _export(demo, DemoClinicalData(1)).find("odm:AdminData", NS)
    assert admin is not None
    assert [u.get("OID") for u in admin.findall("odm:User", NS)] == ["u.coord", "u.pi", "system:rules"]
    assert [loc.get("OID") for loc in admin.findall("odm:Location", NS)] == ["0101", "0102"]
    assert admin.findtext("odm:SignatureDef/odm:Meaning", namespaces=NS).startswith("I confirm")  # type: ignore[union-attr]


class _Broken(DemoClinicalData):
    def __init__(self, subject: SubjectRecord) -> None:
        super().__init__(1)
        self.subject = subject

    def subjects(self) -> list[SubjectRecord]:  # type: ignore[override]
        return [self.subject]


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        (replace(demo_subject(1), site_id="9999"), "site '9999'"),
        (replace(demo_subject(1), visits=(VisitRecord("NOPE", ()),)), "visit 'NOPE' is not in the study definition"),
        (
            replace(
                demo_subject(1), visits=(VisitRecord("SCREENING", (FormRecord("VS", (ItemRecord("NOPE", "1"),)),)),)
            ),
            "item 'NOPE' is not in form VS",
        ),
        (
            replace(
                demo_subject(1),
                visits=(
                    VisitRecord(
                        "SCREENING",
                        (
                            FormRecord(
                                "VS", (ItemRecord("SYSBP", "1", (AuditEntry("intruder", "0101", T0, None, "1"),)),)
                            ),
                        ),
                    ),
                ),
            ),
            "user 'intruder'",
        ),
        (
            replace(
                demo_subject(1),
                visits=(
                    VisitRecord(
                        "SCREENING",
                        (
                            FormRecord(
                                "VS",
                                (
                                    ItemRecord(
                                        "SYSBP", "1", (AuditEntry("u.coord", "0101", datetime(2026, 1, 5), None, "1"),)
                                    ),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
            "has no UTC offset",
        ),
    ],
    ids=["site", "visit", "item", "user", "naive-time"],
)
def test_data_that_does_not_fit_the_definition_is_refused(
    demo: StudyVersion, subject: SubjectRecord, message: str
) -> None:
    with pytest.raises(ExportError, match=message):
        export_odm(demo, io.BytesIO(), _Broken(subject), created_at=T0)


class _Sink(io.BytesIO):
    """Counts the bytes written and keeps none of them."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def write(self, data: ReadableBuffer, /) -> int:
        size = memoryview(data).nbytes
        self.size += size
        return size


def _peak(version: StudyVersion, subjects: int) -> tuple[int, int]:
    sink = _Sink()
    tracemalloc.start()
    try:
        export_odm(version, sink, DemoClinicalData(subjects), created_at=T0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, sink.size


def test_memory_stays_flat_as_subjects_grow(demo: StudyVersion) -> None:
    _peak(demo, 5)  # warm-up: parsers and caches are built once per process
    small, small_size = _peak(demo, 100)
    large, large_size = _peak(demo, 1000)
    assert large_size > 8 * small_size  # ten times the subjects (the metadata is written once)
    assert large < 1.5 * small, (small, large)
