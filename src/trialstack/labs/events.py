"""Events of the labs context. The names are part of the public event contract (stream, webhooks, exports).

Streams: `lab_results` `<study>/<subject>` holds a subject's results, grades and alerts (appended by inbound feeds
without an expected version: each result's `(source, external_id)` makes a repeat a no-op, DESIGN.md §1);
`lab_triage` `<study>/<triage_id>` holds one result nobody could match, until a data manager assigns or rejects it;
`lab_identifiers` `<study>/<source>` the lab patient ids a data manager mapped to subjects.

Values are decimal text in the test's standard unit, with the value and unit the laboratory sent beside them.
Lab values do not reveal treatment here, so none of these is registered blinded.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from trialstack.ledger.registry import event_type

CONTEXT = "labs"


class LabEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabResultFields(LabEvent):
    """What a result says, once matched: the study test, the converted value, the range it was judged against."""

    result_id: str
    subject_id: str
    site_id: str
    visit: str | None
    source: str
    accession: str
    test: str
    lab_code: str
    collected_at: str | None
    reported_at: str | None
    value: str
    unit: str | None
    numeric: bool
    original_value: str
    original_unit: str | None
    low: str | None
    high: str | None
    flag: str | None
    lab_flags: str | None
    lab_range: str | None
    status: str
    version: str
    sex: str | None
    age_years: int | None
    location: str
    study_version: str


@event_type(CONTEXT)
class LabResultReceived(LabResultFields):
    """A new result for a subject (matched by screening number, by a mapped lab id, or assigned from triage:
    `matched_by`)."""

    matched_by: str


@event_type(CONTEXT)
class LabResultCorrected(LabResultFields):
    """The laboratory sent a later version of a result it had already reported (HL7 OBX-11 C, FHIR amended or
    corrected): the whole result as it now stands, and the value it replaces. Reason: corrected by the laboratory."""

    previous_value: str
    previous_version: str


@event_type(CONTEXT)
class LabResultUnmatched(LabEvent):
    """A result no subject or no single visit could be matched to: it waits in triage, never dropped."""

    triage_id: str
    source: str
    patient_id: str
    accession: str
    lab_code: str
    test: str | None
    collected_at: str | None
    value: str
    unit: str | None
    status: str
    version: str
    location: str
    reason: str
    candidates: list[str]
    observation: dict[str, str | int | None]
    """The observation as parsed, so an assignment can process it exactly as if it had matched."""


@event_type(CONTEXT)
class LabResultAssigned(LabEvent):
    """A data manager assigned a triaged result to a subject (and a visit); `remember` maps the lab's patient id to
    the subject for this laboratory's later results."""

    triage_id: str
    subject_id: str
    visit: str | None
    remember: bool


@event_type(CONTEXT)
class LabResultRejected(LabEvent):
    """A data manager rejected a triaged result (not a study participant, a duplicate sample...), with the reason
    on the envelope and here."""

    triage_id: str
    reason: str


@event_type(CONTEXT)
class LabIdentifierMapped(LabEvent):
    """From now on this laboratory's `patient_id` is `subject_id`."""

    source: str
    patient_id: str
    subject_id: str


@event_type(CONTEXT)
class LabValueGraded(LabEvent):
    """A CTCAE v5.0 grade for a result (grade ≥ 1 only: a value inside grade 1's boundary adds no event).
    `criterion` is the workbook's text of the grade that applied; `baseline` the subject's first value of the test
    when the criterion is baseline-relative."""

    result_id: str
    subject_id: str
    test: str
    term: str
    grade: int
    criterion: str
    value: str
    unit: str | None
    baseline: str | None
    lln: str | None
    uln: str | None


@event_type(CONTEXT)
class LabAlertRaised(LabEvent):
    """A grade at or above the study's alert grade: the investigator is alerted and an adverse event is proposed
    (`proposed_term`, starting on the collection date) for them to confirm or dismiss."""

    alert_id: str
    result_id: str
    subject_id: str
    site_id: str
    test: str
    term: str
    grade: int
    value: str
    unit: str | None
    collected_at: str | None
    proposed_term: str


@event_type(CONTEXT)
class LabAlertConfirmed(LabEvent):
    """The investigator confirmed the proposed adverse event (the safety context consumes it)."""

    alert_id: str
    subject_id: str
    term: str
    grade: int
    onset: str | None


@event_type(CONTEXT)
class LabAlertDismissed(LabEvent):
    """The investigator judged the value not an adverse event, with the reason."""

    alert_id: str
    subject_id: str
    reason: str
