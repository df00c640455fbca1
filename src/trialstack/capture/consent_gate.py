"""Consent gating in capture: which decided events the subject's consent allows. Pure.

Capture folds the consent context's events from the subject's `consent` stream into its own small view (contexts
talk through events, DESIGN.md §4) and refuses, with a reason that names the consent, what the study gates on it:
data at visits from the document's `required_before` on, and enrolment, until it is signed; new visits while a
re-consent is due; anything after a withdrawal except what it lets continue; forms of an optional part said No to.
"""

from __future__ import annotations

from collections.abc import Iterable

from trialstack.capture import events as ev
from trialstack.capture.model import Casebook
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.consent import events as consent
from trialstack.consent.events import ConsentView, DocumentView
from trialstack.errors import DomainRuleViolation
from trialstack.protocol.definition import ConsentDocument, GatedAction, StudyDefinition


class ConsentRequired(DomainRuleViolation):
    code = "consent-required"


def _gated_at(
    definition: StudyDefinition, document: ConsentDocument, visit: VisitKey | None, gate: GatedAction
) -> bool:
    """Does the document gate this action here? Visit data only from `required_before` on (log forms always)."""
    if not document.required or gate not in document.gates:
        return False
    if gate is not GatedAction.VISIT_DATA or visit is None:
        return True
    order = [v.id for v in definition.schedule.visits]
    if visit.visit_id not in order or document.required_before not in order:
        return True
    return order.index(visit.visit_id) >= order.index(document.required_before)


def _refusal(
    casebook: Casebook, document: ConsentDocument, held: DocumentView, visit: VisitKey | None, what: str
) -> str | None:
    dated = casebook.visit_dates.get(visit) if visit is not None else None
    if held.signed_version is None:
        return f"{what} needs consent to {document.id} ({document.title}): it has not been signed"
    if held.withdrawn_on is not None:
        if dated is not None and dated < held.withdrawn_on:
            return None
        if visit is None and consent.SAFETY_FOLLOW_UP in held.continues:
            return None
        keeps = ", ".join(sorted(held.continues)) or "nothing"
        return f"{what} is refused: consent to {document.id} was withdrawn on {held.withdrawn_on} (continues: {keeps})"
    if held.reconsent_version is not None and held.reconsent_on is not None:
        if dated is not None and dated < held.reconsent_on:
            return None
        return (
            f"{what} is refused: re-consent to {document.id} version {held.reconsent_version} is required "
            f"(signed: version {held.signed_version}) since {held.reconsent_on}"
        )
    return None


def _actions(events: Iterable[ev.CaptureEvent]) -> Iterable[tuple[GatedAction, VisitKey | None, str, str]]:
    """(gate, visit, form, words) for each decided event that new consent-gated work would produce."""
    for event in events:
        if isinstance(event, ev.SubjectEnrolled):
            yield GatedAction.ENROLMENT, None, "", "enrolment"
        elif isinstance(event, ev.VisitDateRecorded) and event.previous_date is None:
            visit = VisitKey.parse(event.visit)
            yield GatedAction.VISIT_DATA, visit, "", f"data at visit {visit}"
        elif isinstance(event, ev.ItemValueEntered | ev.ItemMarkedNotDone):
            key = FormKey.parse(event.form)
            where = f"visit {key.visit}" if key.visit is not None else f"log form {key.form_id}"
            yield GatedAction.VISIT_DATA, key.visit, key.form_id, f"new data on {key.form_id} at {where}"


def check_consent(
    definition: StudyDefinition, casebook: Casebook, view: ConsentView, events: Iterable[ev.CaptureEvent]
) -> None:
    """Raise ConsentRequired for the first decided event the subject's consent does not allow."""
    if not definition.consent:
        return
    for gate, visit, form_id, what in _actions(events):
        for document in definition.consent:
            held = view.document(document.id)
            if _gated_at(definition, document, visit, gate):
                reason = _refusal(casebook, document, held, visit, what)
                if reason is not None:
                    raise ConsentRequired(reason, field="consent")
            refused = _part_refused(document, held, form_id) if form_id else None
            if refused is not None:
                raise ConsentRequired(f"{what} is refused: {refused}", field="consent")


def _part_refused(document: ConsentDocument, held: DocumentView, form_id: str) -> str | None:
    for version in document.versions:
        for part in version.optional_parts:
            if form_id in part.forms and held.choices.get(part.id) is not True:
                return f"form {form_id} needs a Yes to the optional part {part.id} of {document.id}"
    return None
