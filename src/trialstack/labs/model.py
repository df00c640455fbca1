"""Deciding what one lab result means for the study: pure (no I/O, no clock).

`decide_result` takes a parsed observation and what the handler looked up for it (the subject, the earlier
version of the same result, the subject's baseline of the test) and returns the events to append, or the reason
the row cannot be taken (`RowRefused`: an unknown test or unit, a non-numeric value for a numeric test). Payloads
are built as plain dicts in the shape of `labs.events` (a test proves they validate): the importer decides a
million of them and a Pydantic model per event would double its cost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from trialstack.labs import events as ev
from trialstack.labs.catalog import LabCatalog
from trialstack.labs.grading import grade
from trialstack.labs.matching import SubjectFacts, match_visit
from trialstack.labs.ranges import flag, parse_range
from trialstack.ledger.envelope import NewEvent
from trialstack.protocol.definition import LabTest, StudyDefinition
from trialstack.standards.lab_results import LabObservation, ResultStatus
from trialstack.terminology.ctcae import CRITERIA
from trialstack.terminology.units import IncompatibleUnits, UnknownUnit, round_to

RESULTS = "lab_results"
TRIAGE = "lab_triage"
ALERTS = "lab_alerts"
IDENTIFIERS = "lab_identifiers"
CORRECTED_BY_LAB = "corrected by the laboratory"
UPDATED_BY_LAB = "updated by the laboratory (a later report of the same result)"
COMPARATORS = ("<=", ">=", "<", ">")


def ledger_source(study_id: str, source_id: str) -> str:
    """The ledger's `source` of a laboratory's results: one namespace per study and laboratory."""
    return f"labs:{study_id}:{source_id}"


def external_id(observation: LabObservation) -> str:
    """Accession + lab test code + result version: a repeat of the same report is the same id."""
    text = f"{observation.accession}|{observation.test_code}|{observation.version}"
    return text if len(text) <= 200 else hashlib.sha256(text.encode()).hexdigest()


def result_key(observation: LabObservation) -> tuple[str, str]:
    """The result whatever its version: the accession and the lab's test code."""
    return observation.accession, observation.test_code.strip().upper()


def result_id(source_id: str, observation: LabObservation) -> str:
    accession, code = result_key(observation)
    return f"{source_id}-{accession}-{code}"


def triage_id(source: str, external: str) -> str:
    return "T-" + hashlib.sha256(f"{source}|{external}".encode()).hexdigest()[:12].upper()


@dataclass(frozen=True)
class RowRefused:
    """A row the study cannot take as it is: where, which field, why."""

    location: str
    field: str | None
    reason: str


@dataclass(frozen=True)
class PriorResult:
    """The latest version of the same result already in the ledger (for a correction)."""

    result_id: str
    subject_id: str
    value: str
    version: str


@dataclass(frozen=True)
class Baseline:
    """The subject's first value of a test, and whether it was outside its range (CTCAE baseline-relative)."""

    value: Decimal
    abnormal: bool | None
    collected_at: str | None


@dataclass
class Decided:
    """Events for the subject's result stream, for a triage stream, and for alert streams, in append order."""

    results: list[NewEvent] = field(default_factory=list)
    triage: list[tuple[str, NewEvent]] = field(default_factory=list)
    alerts: list[tuple[str, NewEvent]] = field(default_factory=list)
    kind: str = "received"


@dataclass(frozen=True)
class Converted:
    value: str
    number: Decimal | None
    unit: str | None
    comparator: str


def _number(text: str) -> tuple[str, Decimal] | None:
    stripped = text.strip()
    comparator = next((c for c in COMPARATORS if stripped.startswith(c)), "")
    try:
        number = Decimal(stripped[len(comparator) :].strip())
    except InvalidOperation:
        return None
    return (comparator, number) if number.is_finite() else None


def convert(catalog: LabCatalog, test: LabTest, observation: LabObservation) -> Converted | RowRefused:
    """The value in the test's standard unit, rounded to its decimals (a comparator such as "<" is kept)."""
    if observation.status is ResultStatus.CANCELLED and not observation.value.strip():
        return Converted("", None, test.unit, "")
    parsed = _number(observation.value)
    if parsed is None:
        return RowRefused(
            observation.location, "value", f"'{observation.value}' is not a number ({test.id} is numeric)"
        )
    comparator, number = parsed
    unit = observation.unit.strip() if observation.unit else ""
    if not unit:
        return RowRefused(
            observation.location, "unit", f"no unit given for {test.id} (the study's unit is {test.unit})"
        )
    try:
        converted = catalog.conversion(test, unit).apply(number)
    except (UnknownUnit, IncompatibleUnits) as error:
        return RowRefused(observation.location, "unit", error.message)
    rounded = round_to(converted, test.decimals)
    return Converted(f"{comparator}{rounded}", None if comparator else rounded, test.unit, comparator)


def _collected_on(observation: LabObservation) -> date | None:
    return date.fromisoformat(observation.collected_at[:10]) if observation.collected_at else None


def unmatched(
    study_id: str,
    source_id: str,
    observation: LabObservation,
    test: LabTest | None,
    reason: str,
    candidates: tuple[str, ...],
) -> tuple[str, NewEvent]:
    source = ledger_source(study_id, source_id)
    external = external_id(observation)
    triage = triage_id(source, external)
    payload: dict[str, Any] = {
        "triage_id": triage, "source": source_id, "patient_id": observation.patient_id,
        "accession": observation.accession, "lab_code": observation.test_code, "test": test.id if test else None,
        "collected_at": observation.collected_at, "value": observation.value, "unit": observation.unit,
        "status": observation.status.value, "version": observation.version, "location": observation.location,
        "reason": reason, "candidates": list(candidates), "observation": observation_payload(observation),
    }  # fmt: skip
    event = NewEvent(ev.LabResultUnmatched.__name__, payload, source=source, external_id=external)
    return f"{study_id}/{triage}", event


def observation_payload(observation: LabObservation) -> dict[str, str | int | None]:
    return {
        "location": observation.location, "patient_id": observation.patient_id, "accession": observation.accession,
        "test_code": observation.test_code, "test_system": observation.test_system,
        "test_name": observation.test_name, "value": observation.value, "unit": observation.unit,
        "status": observation.status.value, "version": observation.version,
        "collected_at": observation.collected_at, "reported_at": observation.reported_at,
        "reference_range": observation.reference_range, "flags": observation.flags, "visit": observation.visit,
        "sex": observation.sex, "age_years": observation.age_years, "comment": observation.comment,
    }  # fmt: skip


def observation_from(payload: dict[str, Any]) -> LabObservation:
    return LabObservation(**{**payload, "status": ResultStatus(payload["status"])})


@dataclass(frozen=True)
class ResultContext:
    """What the handler looked up for one observation."""

    study_id: str
    source_id: str
    study_version: str
    definition: StudyDefinition
    catalog: LabCatalog
    subject: SubjectFacts | None
    matched_by: str
    prior: PriorResult | None
    baselines: dict[str, Baseline]
    visit: str | None = None
    """A visit chosen by a data manager (assignment from triage): no matching by date."""


def decide_result(context: ResultContext, observation: LabObservation) -> Decided | RowRefused:
    """The events one observation makes: received or corrected (+ grades, + alerts), or unmatched (triage).

    A result of a known subject in an unknown test, or with a value or unit that does not fit its test, is refused
    (the file or message is bad input); a result of nobody the study knows waits in triage, refused only when its
    value or unit cannot be right for the test it names."""
    catalog = context.catalog
    test = catalog.test_for(observation.test_code)
    if test is None and context.subject is None:
        # nobody's result in a test the study does not have: a data manager decides (most likely: reject it)
        reason = (f"no subject matches the laboratory's patient id '{observation.patient_id}', and the study has no "
                  f"test for code '{observation.test_code}'")  # fmt: skip
        return Decided(triage=[unmatched(context.study_id, context.source_id, observation, None, reason, ())],
                       kind="unmatched")  # fmt: skip
    if test is None:
        return RowRefused(
            observation.location,
            "test code",
            f"unknown test code '{observation.test_code}' for laboratory {context.source_id}: map it to a study "
            "test (LOINC in the study's labs.tests, or the laboratory's codes in labs.sources)",
        )
    converted = convert(catalog, test, observation)
    if isinstance(converted, RowRefused):
        return converted
    subject = context.subject
    if subject is None:
        reason = f"no subject matches the laboratory's patient id '{observation.patient_id}'"
        return Decided(triage=[unmatched(context.study_id, context.source_id, observation, test, reason, ())],
                       kind="unmatched")  # fmt: skip
    visit = context.visit
    if visit is None:
        labs = catalog.labs
        match = match_visit(context.definition, subject, _collected_on(observation), observation.visit,
                            labs.expected.days_before_visit, labs.expected.visits)  # fmt: skip
        if match.visit is None:
            reason = f"subject {subject.subject_id}: {match.reason}"
            triage = unmatched(context.study_id, context.source_id, observation, test, reason, match.candidates)
            return Decided(triage=[triage], kind="unmatched")
        visit = match.visit
    return _received(context, observation, test, converted, subject, visit)


def _received(
    context: ResultContext,
    observation: LabObservation,
    test: LabTest,
    converted: Converted,
    subject: SubjectFacts,
    visit: str | None,
) -> Decided:
    catalog = context.catalog
    reference = catalog.range_for(test, observation.sex, observation.age_years)
    low, high = (reference.low, reference.high) if reference is not None else (None, None)
    critical_low = reference.critical_low if reference is not None else None
    critical_high = reference.critical_high if reference is not None else None
    if reference is None and observation.reference_range and observation.unit:
        low, high = _lab_range(catalog, test, observation)
    number = converted.number
    result_flag = flag(number, low, high, critical_low, critical_high) if number is not None else None
    rid = context.prior.result_id if context.prior is not None else result_id(context.source_id, observation)
    payload: dict[str, Any] = {
        "result_id": rid, "subject_id": subject.subject_id, "site_id": subject.site_id, "visit": visit,
        "source": context.source_id, "accession": observation.accession, "test": test.id,
        "lab_code": observation.test_code, "collected_at": observation.collected_at,
        "reported_at": observation.reported_at, "value": converted.value, "unit": converted.unit,
        "numeric": number is not None, "original_value": observation.value, "original_unit": observation.unit,
        "low": _text(low), "high": _text(high), "flag": result_flag, "lab_flags": observation.flags,
        "lab_range": observation.reference_range, "status": observation.status.value,
        "version": observation.version, "sex": observation.sex, "age_years": observation.age_years,
        "location": observation.location, "study_version": context.study_version,
    }  # fmt: skip
    source = ledger_source(context.study_id, context.source_id)
    external = external_id(observation) if context.matched_by != "triage" else None
    decided = Decided()
    prior = context.prior
    if prior is None:
        payload["matched_by"] = context.matched_by
        decided.results.append(NewEvent(ev.LabResultReceived.__name__, payload, source=source if external else None,
                                        external_id=external))  # fmt: skip
    else:
        payload["previous_value"], payload["previous_version"] = prior.value, prior.version
        reason = CORRECTED_BY_LAB if observation.status is ResultStatus.CORRECTED else UPDATED_BY_LAB
        decided.results.append(NewEvent(ev.LabResultCorrected.__name__, payload, reason=reason,
                                        source=source if external else None, external_id=external))  # fmt: skip
        decided.kind = "corrected"
    if number is not None and observation.status is not ResultStatus.CANCELLED:
        _grade(context, test, number, low, high, payload, decided)
    return decided


def _lab_range(
    catalog: LabCatalog, test: LabTest, observation: LabObservation
) -> tuple[Decimal | None, Decimal | None]:
    """The laboratory's own range, converted like the value, when the study declares none for the test."""
    parsed = parse_range(observation.reference_range or "")
    if parsed is None:
        return None, None
    try:
        conversion = catalog.conversion(test, (observation.unit or "").strip())
    except (UnknownUnit, IncompatibleUnits):
        return None, None
    low, high = parsed
    return (
        round_to(conversion.apply(low), test.decimals + 1) if low is not None else None,
        round_to(conversion.apply(high), test.decimals + 1) if high is not None else None,
    )


def _same(number: Decimal) -> Decimal:
    return number


def _text(number: Decimal | None) -> str | None:
    return None if number is None else str(number)


def _grade(
    context: ResultContext,
    test: LabTest,
    number: Decimal,
    low: Decimal | None,
    high: Decimal | None,
    payload: dict[str, Any],
    decided: Decided,
) -> None:
    baseline = context.baselines.get(test.id)
    if baseline is not None and baseline.collected_at == payload["collected_at"]:
        baseline = None
    # A subject's first value has no baseline before it: it is graded as if the baseline was normal (against the
    # ULN/LLN), so that a severe first value is never graded 0 against itself.
    for term in test.ctcae:
        criteria = CRITERIA[term]
        unit = criteria.unit or test.unit
        into = context.catalog.conversion(test, test.unit, unit).apply if unit != test.unit else _same
        graded = grade(
            term,
            into(number),
            unit_of_value=unit,
            lln=into(low) if low is not None else None,
            uln=into(high) if high is not None else None,
            baseline=into(baseline.value) if baseline is not None else None,
            baseline_abnormal=baseline.abnormal if baseline is not None else False,
        )
        level = graded.grade if graded.grade is not None else graded.at_least
        if level is None or level < 1:
            continue
        decided.results.append(NewEvent(ev.LabValueGraded.__name__, {
            "result_id": payload["result_id"], "subject_id": payload["subject_id"], "test": test.id, "term": term,
            "grade": level, "criterion": graded.criterion, "value": payload["value"], "unit": test.unit,
            "baseline": _text(baseline.value) if baseline is not None else None, "lln": _text(low),
            "uln": _text(high),
        }))  # fmt: skip
        if level >= context.catalog.labs.alert_grade:
            alert_id = f"{payload['result_id']}-{term.upper().replace(' ', '-')}"
            source = ledger_source(context.study_id, context.source_id)
            decided.alerts.append((f"{context.study_id}/{alert_id}", NewEvent(ev.LabAlertRaised.__name__, {
                "alert_id": alert_id, "result_id": payload["result_id"], "subject_id": payload["subject_id"],
                "site_id": payload["site_id"], "test": test.id, "term": term, "grade": level,
                "value": payload["value"], "unit": test.unit, "collected_at": payload["collected_at"],
                "proposed_term": term,
            }, source=source, external_id=f"alert|{alert_id}")))  # fmt: skip
