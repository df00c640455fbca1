"""The four cross-source checks, one function each: pure, from what reconcile follows of a subject and the protocol.

Each returns the discrepancy it finds, or None when the check holds or cannot be decided (a date or value that is
not known yet raises nothing, like a comparison with a missing value in the rule language, DESIGN.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

from trialstack.errors import InvalidInput
from trialstack.protocol.definition import ItemType, StudyDefinition
from trialstack.protocol.definition_labs import LabTest
from trialstack.reconcile.events import Addressee, DiscrepancyKind
from trialstack.terminology.units import conversion

ENDED = {"withdrawn": "withdrew from the study", "screen_failed": "failed screening"}
"""Capture statuses after which no sample may be collected, and how a sentence says so."""
DEFAULT_LAB_FORM = "LB"
DEFAULT_DATE_ITEM = "LBDAT"
_CODES = {
    DiscrepancyKind.SAMPLE_OUT_OF_WINDOW: "RC-WINDOW",
    DiscrepancyKind.SAMPLE_MISSING: "RC-MISSING",
    DiscrepancyKind.SUBJECT_NOT_ELIGIBLE_FOR_SAMPLES: "RC-CONSENT",
    DiscrepancyKind.LOCAL_CENTRAL_MISMATCH: "RC-LOCAL",
}


@dataclass(frozen=True)
class ConsentRecord:
    """One consent document as reconcile follows it: first signed (electronically or on paper), fully withdrawn."""

    signed_on: str | None = None
    withdrawn_on: str | None = None


@dataclass(frozen=True)
class SubjectFacts:
    subject_id: str
    site_id: str
    status: str | None = None
    ended_on: str | None = None
    """The day the subject withdrew or failed screening."""
    visit_dates: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    consents: Mapping[str, ConsentRecord] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class CentralResult:
    result_id: str
    subject_id: str
    site_id: str
    visit: str | None
    test: str
    source: str
    value: str
    unit: str | None
    numeric: bool
    collected_on: str | None
    received_on: str
    """The day the result reached the ledger: stands in for an unknown collection date in the consent check."""

    @property
    def sample_on(self) -> str:
        return self.collected_on or self.received_on


@dataclass(frozen=True)
class LocalValue:
    """The EDC value of a local-lab item on one form instance (`WEEK4.LB`, item `K`)."""

    form: str
    item: str
    value: str
    unit: str | None = None


@dataclass(frozen=True)
class Discrepancy:
    discrepancy_id: str
    kind: DiscrepancyKind
    subject_id: str
    site_id: str
    visit: str | None
    test: str | None
    form: str
    item: str
    detail: str
    addressed_to: Addressee
    sources: tuple[str, ...]


def discrepancy_id(kind: DiscrepancyKind, subject_id: str, visit: str | None, test: str | None = None) -> str:
    """Deterministic: the same discrepancy always has the same id, hence one stream and one query."""
    return "/".join(part for part in (_CODES[kind], subject_id, visit or "NOVISIT", test) if part)


def visit_id_of(visit: str) -> str:
    """A visit instance's visit: `UNSCHED.2` → `UNSCHED`."""
    return visit.split(".")[0]


def lab_form(definition: StudyDefinition, test: LabTest | None) -> str:
    """The EDC form of the local laboratory: the test's own local item's form, else any test's, else `LB`."""
    labs = definition.labs
    refs = [test.local_item] if test is not None and test.local_item else []
    refs += [t.local_item for t in (labs.tests if labs is not None else ()) if t.local_item]
    return refs[0].split(".")[0] if refs else DEFAULT_LAB_FORM


def query_place(definition: StudyDefinition, test_id: str | None, visit: str | None) -> tuple[str, str]:
    """The form instance and item a sample's query sits on: the lab form's collection-date item at the visit, so
    it shows on that casebook page. Without a visit, the first visit of the schedule that has the lab form."""
    labs = definition.labs
    form_id = lab_form(definition, labs.test(test_id) if labs is not None and test_id else None)
    form = definition.form(form_id)
    dated = next((item.id for item in form.items if item.type is ItemType.DATE), None) if form else None
    if visit is None:
        carrying = definition.schedule.visits_with_form(form_id)
        visit = carrying[0].id if carrying else definition.schedule.visits[0].id
    return f"{visit}.{form_id}", dated or DEFAULT_DATE_ITEM


def is_central(definition: StudyDefinition, source: str) -> bool:
    """Results of a laboratory the study declares `central: false` are not reconciled; unknown sources count as
    central (the labs context refuses results from sources the study does not declare)."""
    labs = definition.labs
    declared = labs.source(source) if labs is not None else None
    return declared is None or declared.central


def _test_name(definition: StudyDefinition, test_id: str) -> str:
    labs = definition.labs
    test = labs.test(test_id) if labs is not None else None
    return test.name if test is not None else test_id


def _lab_source(result: CentralResult) -> str:
    return f"lab:{result.source}/{result.result_id}"


def out_of_window(result: CentralResult, facts: SubjectFacts | None, definition: StudyDefinition) -> Discrepancy | None:
    """sample_out_of_window: collected outside its visit's window, and not within `days_before_visit` days before
    the visit's actual date (nor on it). Undecided while the window cannot be known (no anchor date yet)."""
    labs = definition.labs
    if labs is None or facts is None or result.visit is None or result.collected_on is None:
        return None
    visit = definition.visit(visit_id_of(result.visit))
    if visit is None:
        return None
    collected = date.fromisoformat(result.collected_on[:10])
    allowed: list[tuple[date, date]] = []
    sources = [_lab_source(result)]
    actual = facts.visit_dates.get(result.visit)
    if actual is not None:
        held = date.fromisoformat(actual)
        allowed.append((held - timedelta(days=labs.expected.days_before_visit), held))
        sources.append(f"edc:{result.visit} visit date")
    undecided = False
    if visit.day is not None:
        anchor = facts.visit_dates.get(definition.schedule.anchor)
        window = visit.window_dates(date.fromisoformat(anchor)) if anchor is not None else None
        if window is None:
            undecided = True
        else:
            allowed.append(window)
            sources.append(f"edc:{definition.schedule.anchor} visit date")
    if undecided or not allowed or any(first <= collected <= last for first, last in allowed):
        return None
    spans = " or ".join(f"{first} to {last}" for first, last in allowed)
    form, item = query_place(definition, result.test, result.visit)
    held_text = f" (visit date {actual})" if actual is not None else ""
    return Discrepancy(
        discrepancy_id(DiscrepancyKind.SAMPLE_OUT_OF_WINDOW, result.subject_id, result.visit, result.test),
        DiscrepancyKind.SAMPLE_OUT_OF_WINDOW, result.subject_id, result.site_id, result.visit, result.test, form, item,
        f"The central {_test_name(definition, result.test)} sample for visit {result.visit}{held_text} was collected "
        f"on {collected}, outside the days it counts for that visit ({spans}). Please confirm the visit date and "
        f"the sample collection date.",
        Addressee.STUDY_COORDINATOR, tuple(sources),
    )  # fmt: skip


def not_eligible(result: CentralResult, facts: SubjectFacts | None, definition: StudyDefinition) -> Discrepancy | None:
    """subject_not_eligible_for_samples: collected after the subject withdrew or failed screening, before any
    consent to a required document is on record (paper consent counts), or after that consent was withdrawn.
    One per sample (subject and visit), not one per test: the question is whether the sample may be used."""
    on = result.sample_on[:10]
    reasons: list[str] = []
    if facts is not None and facts.status in ENDED and facts.ended_on is not None and facts.ended_on < on:
        reasons.append(f"{ENDED[facts.status]} on {facts.ended_on}")
    for document in definition.consent:
        if not document.required:
            continue
        held = facts.consents.get(document.id) if facts is not None else None
        if held is None or held.signed_on is None:
            reasons.append(f"has no signed consent to {document.id} on record")
        elif held.signed_on > on:
            reasons.append(f"signed consent to {document.id} only on {held.signed_on}")
        elif held.withdrawn_on is not None and held.withdrawn_on < on:
            reasons.append(f"withdrew consent to {document.id} on {held.withdrawn_on}")
    if not reasons:
        return None
    form, item = query_place(definition, result.test, result.visit)
    site_id = facts.site_id if facts is not None else result.site_id
    visit = f"visit {result.visit}" if result.visit else "no visit"
    return Discrepancy(
        discrepancy_id(DiscrepancyKind.SUBJECT_NOT_ELIGIBLE_FOR_SAMPLES, result.subject_id, result.visit),
        DiscrepancyKind.SUBJECT_NOT_ELIGIBLE_FOR_SAMPLES, result.subject_id, site_id, result.visit, None, form, item,
        f"Central laboratory results ({visit}, first seen: {_test_name(definition, result.test)}) come from a "
        f"sample collected on {on} from subject {result.subject_id}, who {' and '.join(reasons)}. Data management: "
        f"confirm with the site and the laboratory whether the sample may be kept and used.",
        Addressee.DATA_MANAGER, (_lab_source(result), f"edc:{result.subject_id} status and consent"),
    )  # fmt: skip


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def local_mismatch(result: CentralResult, local: LocalValue | None, definition: StudyDefinition) -> Discrepancy | None:
    """local_central_mismatch: the EDC's local-lab value and the central value differ by more than the test's
    `local_tolerance_percent` of the central value. A local value in another unit (the EDC item's) is converted to
    the central one first, with the test's molar mass where the units need it."""
    labs = definition.labs
    test = labs.test(result.test) if labs is not None else None
    if test is None or test.local_item is None or local is None or result.visit is None or not result.numeric:
        return None
    form_id, item_id = test.local_item.split(".")
    form = definition.form(form_id)
    item = form.item(item_id) if form is not None else None
    local_unit = local.unit or (item.unit if item is not None else None)
    local_value, central_value = _decimal(local.value), _decimal(result.value)
    if local_value is None or central_value is None:
        return None
    if local_unit is not None and result.unit is not None and local_unit.strip() != result.unit.strip():
        molar_mass = Decimal(test.molar_mass) if test.molar_mass is not None else None
        try:
            local_value = conversion(local_unit.strip(), result.unit.strip(), molar_mass).apply(local_value)
        except InvalidInput:
            return None  # units that cannot be compared (the study validator names them)
    difference = abs(local_value - central_value)
    if difference <= abs(central_value) * test.local_tolerance_percent / 100:
        return None
    unit = f" {result.unit}" if result.unit else ""
    by = f"by {difference * 100 / abs(central_value):.1f}%, " if central_value else ""
    return Discrepancy(
        discrepancy_id(DiscrepancyKind.LOCAL_CENTRAL_MISMATCH, result.subject_id, result.visit, result.test),
        DiscrepancyKind.LOCAL_CENTRAL_MISMATCH, result.subject_id, result.site_id, result.visit, result.test,
        local.form, local.item,
        f"{test.name} at visit {result.visit} is {local.value}{unit} in the local laboratory data, but the central "
        f"laboratory reported {result.value}{unit} (sample collected {result.sample_on[:10]}): they differ {by}more "
        f"than the {test.local_tolerance_percent}% allowed. Please check the local value against its source.",
        Addressee.STUDY_COORDINATOR, (_lab_source(result), f"edc:{local.form}.{local.item}"),
    )  # fmt: skip


def missing_sample(
    facts: SubjectFacts, visit_id: str, arrived: bool, definition: StudyDefinition, today: date
) -> Discrepancy | None:
    """sample_missing: the visit took place more than `missing_after_days` days ago and no central result for it
    has arrived. Screen failures are left out: their later samples no longer matter."""
    labs = definition.labs
    held = facts.visit_dates.get(visit_id)
    if labs is None or held is None or arrived or facts.status == "screen_failed":
        return None
    waited = (today - date.fromisoformat(held)).days
    if waited <= labs.expected.missing_after_days:
        return None
    form, item = query_place(definition, None, visit_id)
    visit = definition.visit(visit_id)
    name = visit.name if visit is not None else visit_id
    return Discrepancy(
        discrepancy_id(DiscrepancyKind.SAMPLE_MISSING, facts.subject_id, visit_id),
        DiscrepancyKind.SAMPLE_MISSING, facts.subject_id, facts.site_id, visit_id, None, form, item,
        f"Visit {name} took place on {held}, but no central laboratory sample for it has arrived {waited} days "
        f"later (expected within {labs.expected.missing_after_days} days). Please confirm the sample was collected "
        f"and shipped.",
        Addressee.STUDY_COORDINATOR, (f"edc:{visit_id} visit date", "lab:central results"),
    )  # fmt: skip
