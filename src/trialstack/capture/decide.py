"""Decisions of the capture context: command + casebook + compiled protocol -> events. Pure.

Each function returns a `Decision`: the events to append and the edit-check results it evaluated, so a save
can answer with every check it ran. Dates ("today") are inputs; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import reduce

from trialstack.capture import commands as cmd
from trialstack.capture import events as ev
from trialstack.capture import signatures
from trialstack.capture.checks import CheckResult, StudyRules, derive, eligibility, evaluate_checks, window_check
from trialstack.capture.model import Casebook, ItemState, StudyStatus, SubjectStatus, evolve
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.capture.values import normalize, parse_date
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.protocol.definition import CheckAction, Item, Visit, VisitType


@dataclass(frozen=True)
class Decision:
    events: list[ev.CaptureEvent] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)
    """Per-event reason for change (index into `events`), for the envelope's Part 11 'why'."""


def fold(state: Casebook, events: Iterable[ev.CaptureEvent]) -> Casebook:
    return reduce(lambda s, e: evolve(e, s), events, state)


def _writable(casebook: Casebook, study: StudyStatus) -> None:
    if study.locked:
        raise DomainRuleViolation(f"study {study.study_id} is locked: no data can change until it is unlocked")
    if not casebook.exists:
        raise NotFound(f"subject {casebook.subject_id} does not exist", field="subject")
    if casebook.locked:
        raise DomainRuleViolation(f"the casebook of {casebook.subject_id} is locked", field="subject")


def _not_future(day: date, today: date, field_name: str, label: str) -> None:
    if day > today:
        raise InvalidInput(
            f"{label} {day.isoformat()} is in the future (today is {today.isoformat()})", field=field_name
        )


def screen(study: StudyStatus, rules: StudyRules, command: cmd.ScreenSubject, subject_id: str, today: date) -> Decision:
    if study.locked:
        raise DomainRuleViolation(f"study {study.study_id} is locked")
    if command.site_id not in {site.id for site in rules.definition.sites}:
        raise InvalidInput(f"site {command.site_id!r} is not a site of this study", field="site_id")
    screened_on = parse_date(command.screened_on, "screened_on", "screening date")
    _not_future(screened_on, today, "screened_on", "screening date")
    event = ev.SubjectScreened(
        subject_id=subject_id,
        site_id=command.site_id,
        screened_on=screened_on.isoformat(),
        study_version=rules.version_hash,
    )
    return Decision([event])


def record_visit_date(
    casebook: Casebook, study: StudyStatus, rules: StudyRules, command: cmd.RecordVisitDate, today: date
) -> Decision:
    _writable(casebook, study)
    visit = rules.visit(command.visit.visit_id)
    if visit is None:
        raise NotFound(f"visit {command.visit.visit_id} is not in the schedule", field="visit")
    if command.visit.repeat and not visit.repeating:
        raise InvalidInput(f"visit {visit.id} does not repeat", field="visit")
    if visit.repeating and not command.visit.repeat:
        raise InvalidInput(
            f"visit {visit.id} repeats: name the instance ({visit.id}.1, {visit.id}.2, ...)", field="visit"
        )
    if visit.repeating:
        existing = max((k.repeat for k in casebook.visit_dates if k.visit_id == visit.id), default=0)
        if command.visit.repeat > existing + 1:
            raise InvalidInput(f"the next instance of {visit.id} is {visit.id}.{existing + 1}", field="visit")
    visit_date = parse_date(command.visit_date, "visit_date", "visit date")
    _not_future(visit_date, today, "visit_date", "visit date")
    previous = casebook.visit_dates.get(command.visit)
    if previous is None:
        refusal = new_visit_refusal(casebook, visit, visit_date)
        if refusal is not None:
            raise DomainRuleViolation(refusal, field="visit")
    if previous == visit_date.isoformat():
        return Decision()
    if previous is not None and not command.reason:
        raise InvalidInput("changing a visit date needs a reason for change", field="reason")
    event = ev.VisitDateRecorded(
        subject_id=casebook.subject_id,
        visit=str(command.visit),
        visit_date=visit_date.isoformat(),
        previous_date=previous,
        study_version=rules.version_hash,
    )
    after = evolve(event, casebook)
    windows = _window_results(rules, after, command.visit)
    blocked = [
        r for r in windows if r.result is False and r.action is CheckAction.BLOCK and r.form == str(command.visit)
    ]
    if blocked:
        raise DomainRuleViolation(blocked[0].message, field="visit_date")
    checks = windows + evaluate_checks(rules, after, {}, {command.visit})
    decided: list[ev.CaptureEvent] = [event, *_transitions(after, checks, rules.version_hash)]
    decided += signatures.invalidated_by(casebook, after, f"visit date of {command.visit}")
    return Decision(decided, checks, {0: command.reason} if previous is not None and command.reason else {})


def new_visit_refusal(casebook: Casebook, visit: Visit, on: date | None) -> str | None:
    """Why a visit not dated yet can no longer take place for a subject who left the study early; None if it can.

    A screen failure keeps its screening visits (a screen failure's screening data are completed and cleaned like
    anyone's) and no later visit. A withdrawn subject keeps the visits held on or before the withdrawal (entered
    late from the source) and the end-of-study visit (early termination), nothing later. `on` is the visit's date,
    None when it is not known (then only the visits the status admits whatever their date)."""
    if casebook.status is SubjectStatus.SCREEN_FAILED:
        if visit.type is VisitType.SCREENING:
            return None
        return f"{casebook.subject_id} failed screening on {casebook.ended_on}: only screening visits can be added"
    if casebook.status is SubjectStatus.WITHDRAWN:
        if visit.type is VisitType.END_OF_STUDY:
            return None
        if on is not None and casebook.ended_on is not None and on.isoformat() <= casebook.ended_on:
            return None
        return (
            f"{casebook.subject_id} withdrew on {casebook.ended_on}: only visits held by then and the "
            "end-of-study visit can be added"
        )
    return None


def new_data_refusal(rules: StudyRules, casebook: Casebook, key: FormKey) -> str | None:
    """Why a first entry (a value or not-done on an item without one) on this form instance is refused for a subject
    who left the study early; None when it is allowed. Changes to data already entered are always allowed.

    Visit forms take new data where the visit is one the subject could still have (`new_visit_refusal`). Log forms
    (adverse events, medications) stay open: an adverse event that began after consent is reported for a screen
    failure too, and one ongoing at a withdrawal is followed up; their edit checks date them against consent."""
    if not casebook.ended_early or key.visit is None:
        return None
    subject = casebook.subject_id
    visit = rules.definition.visit(key.visit.visit_id)
    held = casebook.visit_dates.get(key.visit)
    refusal = new_visit_refusal(casebook, visit, date.fromisoformat(held) if held else None) if visit else None
    if refusal is None:
        return None
    how = "failed screening" if casebook.status is SubjectStatus.SCREEN_FAILED else "withdrew"
    return (
        f"{subject} {how} on {casebook.ended_on}: visit {key.visit} takes no new data, "
        "only corrections of data already entered"
    )


def _window_results(rules: StudyRules, casebook: Casebook, visit: VisitKey) -> list[CheckResult]:
    """The visit's own window, and every dated visit's when the anchor date is what changed."""
    keys = list(casebook.visit_dates) if visit.visit_id == rules.definition.schedule.anchor else [visit]
    return [r for r in (window_check(rules, casebook, key) for key in keys) if r is not None]


def _transitions(casebook: Casebook, results: Sequence[CheckResult], version_hash: str) -> list[ev.CaptureEvent]:
    """Events only where a check changes state: newly failing, or failing before and not any more."""
    decided: list[ev.CaptureEvent] = []
    for result in results:
        key = (result.check_id, result.form)
        common = {
            "subject_id": casebook.subject_id,
            "site_id": casebook.site_id,
            "check_id": result.check_id,
            "form": result.form,
            "item": result.item,
            "study_version": version_hash,
        }
        if result.result is False and key not in casebook.failing:
            decided.append(ev.EditCheckFailed(message=result.message, **common))
        elif result.result is not False and key in casebook.failing:
            decided.append(ev.EditCheckResolved(**common))
    return decided


def _check_form_key(rules: StudyRules, casebook: Casebook, key: FormKey) -> None:
    definition = rules.definition
    if definition.form(key.form_id) is None:
        raise NotFound(f"form {key.form_id} is not in the study", field="form")
    if key.is_log:
        if key.form_id not in definition.schedule.log_forms:
            raise InvalidInput(
                f"{key.form_id} is collected at visits, not as a log: use VISIT.{key.form_id}", field="form"
            )
        existing = max((k.record for k in casebook.forms if k.form_id == key.form_id and k.is_log), default=0)
        if key.record > existing + 1:
            raise InvalidInput(f"the next {key.form_id} record is {key.form_id}.{existing + 1}", field="form")
        return
    visit = definition.visit(key.visit.visit_id) if key.visit is not None else None
    if visit is None or key.form_id not in visit.forms:
        raise InvalidInput(f"form {key.form_id} is not collected at visit {key.visit}", field="form")
    if key.visit is None or key.visit not in casebook.visit_dates:
        refusal = new_data_refusal(rules, casebook, key)
        if refusal is not None:
            raise DomainRuleViolation(refusal, field="form")
        raise DomainRuleViolation(f"record the date of visit {key.visit} before entering its forms", field="form")


def save_form(
    casebook: Casebook, study: StudyStatus, rules: StudyRules, command: cmd.SaveForm, today: date
) -> Decision:
    """First entries, changes (with a reason) and not-done items; derivations; edit checks; SDV invalidation."""
    _writable(casebook, study)
    key = command.form
    _check_form_key(rules, casebook, key)
    form_state = casebook.form(key)
    if form_state.frozen:
        raise DomainRuleViolation(f"form {key} is frozen: a data manager must unfreeze it first", field="form")
    form_def = rules.definition.form(key.form_id)
    if form_def is None:
        raise NotFound(f"form {key.form_id} is not in the study", field="form")
    decided: list[ev.CaptureEvent] = []
    reasons: dict[int, str] = {}
    changed_items: set[str] = set()
    invalidated: list[str] = []
    for item_id, entry in command.items.items():
        field_name = f"items.{item_id}"
        item = form_def.item(item_id)
        if item is None:
            raise InvalidInput(f"item {item_id} is not on form {key.form_id}", field=field_name)
        if item.derived is not None:
            raise InvalidInput(f"{item.label} is derived by the system and cannot be entered", field=field_name)
        current = form_state.items.get(item_id)
        event = _item_event(casebook, rules, key, item, entry, field_name)
        if event is None:
            continue
        reason = entry.reason_for_change or command.reason
        if current is not None and current.has_entry:
            if not reason:
                raise InvalidInput(f"{item.label}: changing saved data needs a reason for change", field=field_name)
            reasons[len(decided)] = reason
        elif casebook.ended_early:
            refusal = new_data_refusal(rules, casebook, key)
            if refusal is not None:
                raise DomainRuleViolation(refusal, field=field_name)
        decided.append(event)
        changed_items.add(item_id)
        if item_id in form_state.verified:
            invalidated.append(item_id)
    if not decided:
        return Decision()
    if invalidated:
        decided.append(
            ev.SourceDataVerificationInvalidated(subject_id=casebook.subject_id, form=str(key), items=invalidated)
        )
    after = fold(casebook, decided)
    derived_events = _derivations(rules, after, key)
    after = fold(after, derived_events)
    changed: dict[FormKey, set[str]] = {key: changed_items}
    for derived in derived_events:
        if isinstance(derived, ev.ItemValueDerived):
            changed.setdefault(FormKey.parse(derived.form), set()).add(derived.item)
    checks = evaluate_checks(rules, after, changed, set())
    blocked = [r for r in checks if r.result is False and r.action is CheckAction.BLOCK and r.form == str(key)]
    if blocked:
        raise DomainRuleViolation(blocked[0].message, field=f"items.{blocked[0].item}")
    decided += derived_events
    decided += _transitions(after, checks, rules.version_hash)
    if any(signature.valid for signature in casebook.signatures.values()):
        decided += signatures.invalidated_by(casebook, after, f"form {key}")
    return Decision(decided, checks, reasons)


def _item_event(
    casebook: Casebook,
    rules: StudyRules,
    key: FormKey,
    item: Item,
    entry: cmd.ItemInput,
    field_name: str,
) -> ev.CaptureEvent | None:
    """The event one submitted item calls for (None when nothing changes); the caller found `item` on the form."""
    item_id = item.id
    previous = casebook.item(key, item_id)
    common = {"subject_id": casebook.subject_id, "form": str(key), "item": item_id, "study_version": rules.version_hash}
    if entry.not_done_reason is not None:
        if entry.value is not None:
            raise InvalidInput(f"{item.label}: give a value or a not-done reason, not both", field=field_name)
        if not entry.not_done_reason.strip():
            raise InvalidInput(f"{item.label}: a not-done reason cannot be blank", field=field_name)
        if previous.not_done_reason == entry.not_done_reason:
            return None
        return ev.ItemMarkedNotDone(not_done_reason=entry.not_done_reason, previous_value=previous.value, **common)
    if entry.value is None:
        if previous.value is None and previous.not_done_reason is None:
            return None
        return ev.ItemValueChanged(value=None, previous_value=previous.value, unit=None, **common)
    codelist = rules.definition.codelist(item.codelist) if item.codelist else None
    value = normalize(item, entry.value, codelist, field_name)
    if entry.unit is not None and item.unit is not None and entry.unit != item.unit:
        raise InvalidInput(f"{item.label}: unit {entry.unit!r} is not the item's unit {item.unit!r}", field=field_name)
    if entry.unit is not None and item.unit is None:
        raise InvalidInput(f"{item.label} takes no unit, got {entry.unit!r}", field=field_name)
    if previous.value == value:
        return None
    if not previous.has_entry:
        return ev.ItemValueEntered(value=value, unit=item.unit, **common)
    return ev.ItemValueChanged(value=value, previous_value=previous.value, unit=item.unit, **common)


def _derivations(rules: StudyRules, casebook: Casebook, saved: FormKey) -> list[ev.CaptureEvent]:
    """Recompute derived items of every form instance that has any (derivations may read other forms)."""
    decided: list[ev.CaptureEvent] = []
    keys = [k for k in casebook.forms if k.form_id in rules.derived]
    if saved.form_id in rules.derived and saved not in keys:
        keys.append(saved)
    for key in keys:
        for item_id, value in derive(rules, casebook, key).items():
            previous = casebook.item(key, item_id).value
            if previous != value:
                decided.append(
                    ev.ItemValueDerived(
                        subject_id=casebook.subject_id,
                        form=str(key),
                        item=item_id,
                        value=value,
                        previous_value=previous,
                        study_version=rules.version_hash,
                    )
                )
    return decided


def _eligibility_form(rules: StudyRules, casebook: Casebook) -> FormKey | None:
    declared = rules.definition.eligibility
    if declared is None:
        return None
    return next((key for key in sorted(casebook.forms) if key.form_id == declared.form), None)


def enrol(
    casebook: Casebook, study: StudyStatus, rules: StudyRules, command: cmd.EnrolSubject, today: date
) -> Decision:
    """Enrol when every eligibility criterion holds; refuse naming the criteria that fail or are unanswered."""
    _writable(casebook, study)
    if casebook.status is not SubjectStatus.SCREENING:
        raise DomainRuleViolation(f"{casebook.subject_id} is {casebook.status}, not in screening", field="subject")
    enrolled_on = parse_date(command.enrolled_on, "enrolled_on", "enrolment date")
    _not_future(enrolled_on, today, "enrolled_on", "enrolment date")
    results = eligibility(rules, casebook, _eligibility_form(rules, casebook))
    failing = [cid for cid, ok in results.items() if ok is False]
    unknown = [cid for cid, ok in results.items() if ok is None]
    if failing:
        raise DomainRuleViolation(f"not eligible: criteria {', '.join(failing)} are not met", field="eligibility")
    if unknown:
        raise DomainRuleViolation(
            f"eligibility cannot be decided: criteria {', '.join(unknown)} lack data", field="eligibility"
        )
    event = ev.SubjectEnrolled(
        subject_id=casebook.subject_id,
        enrolled_on=enrolled_on.isoformat(),
        criteria=list(results),
        study_version=rules.version_hash,
    )
    return Decision([event])


def screen_fail(
    casebook: Casebook, study: StudyStatus, rules: StudyRules, command: cmd.ScreenFailSubject, today: date
) -> Decision:
    _writable(casebook, study)
    if casebook.status is not SubjectStatus.SCREENING:
        raise DomainRuleViolation(f"{casebook.subject_id} is {casebook.status}, not in screening", field="subject")
    if not command.reason.strip():
        raise InvalidInput("a screen failure needs a reason", field="reason")
    failed_on = parse_date(command.failed_on, "failed_on", "screen failure date")
    _not_future(failed_on, today, "failed_on", "screen failure date")
    results = eligibility(rules, casebook, _eligibility_form(rules, casebook))
    event = ev.SubjectScreenFailed(
        subject_id=casebook.subject_id,
        failed_on=failed_on.isoformat(),
        failed_criteria=[cid for cid, ok in results.items() if ok is False],
        study_version=rules.version_hash,
    )
    return Decision([event], reasons={0: command.reason})


def withdraw(casebook: Casebook, study: StudyStatus, command: cmd.WithdrawSubject, today: date) -> Decision:
    _writable(casebook, study)
    if casebook.status is not SubjectStatus.ENROLLED:
        raise DomainRuleViolation(f"only enrolled subjects can withdraw; {casebook.subject_id} is {casebook.status}")
    if not command.reason.strip():
        raise InvalidInput("a withdrawal needs a reason", field="reason")
    withdrawn_on = parse_date(command.withdrawn_on, "withdrawn_on", "withdrawal date")
    _not_future(withdrawn_on, today, "withdrawn_on", "withdrawal date")
    event = ev.SubjectWithdrawn(subject_id=casebook.subject_id, withdrawn_on=withdrawn_on.isoformat())
    return Decision([event], reasons={0: command.reason})


def complete(casebook: Casebook, study: StudyStatus, command: cmd.CompleteSubject, today: date) -> Decision:
    _writable(casebook, study)
    if casebook.status is not SubjectStatus.ENROLLED:
        raise DomainRuleViolation(
            f"only enrolled subjects complete the study; {casebook.subject_id} is {casebook.status}"
        )
    completed_on = parse_date(command.completed_on, "completed_on", "completion date")
    _not_future(completed_on, today, "completed_on", "completion date")
    return Decision([ev.SubjectCompleted(subject_id=casebook.subject_id, completed_on=completed_on.isoformat())])


def verify_source_data(
    casebook: Casebook, study: StudyStatus, rules: StudyRules, command: cmd.VerifySourceData
) -> Decision:
    """SDV: the named items, or every item due for SDV (the targeted ones when the form marks any)."""
    _writable(casebook, study)
    key = command.form
    state = casebook.forms.get(key)
    form_def = rules.definition.form(key.form_id)
    if state is None or form_def is None or not any(i.has_entry for i in state.items.values()):
        raise DomainRuleViolation(f"form {key} has no data to verify", field="form")
    due = sdv_items(rules, key, state.items)
    requested = set(command.items) or set(due)
    unknown = requested - {item.id for item in form_def.items}
    if unknown:
        raise InvalidInput(f"items {', '.join(sorted(unknown))} are not on form {key.form_id}", field="items")
    empty = [i for i in sorted(requested) if not casebook.item(key, i).has_entry]
    if empty and command.items:
        raise InvalidInput(f"items {', '.join(empty)} have no data to verify", field="items")
    newly = sorted((requested - set(empty)) - state.verified)
    if not newly:
        return Decision()
    complete_after = set(due) <= (state.verified | set(newly))
    return Decision(
        [
            ev.SourceDataVerified(
                subject_id=casebook.subject_id, form=str(key), items=newly, form_complete=complete_after
            )
        ]
    )


def sdv_items(rules: StudyRules, key: FormKey, items: Mapping[str, ItemState]) -> list[str]:
    """Items due for SDV on a form instance: those marked `sdv` (targeted SDV), else every item with data."""
    form_def = rules.definition.form(key.form_id)
    if form_def is None:
        return []
    targeted = [item.id for item in form_def.items if item.sdv]
    if targeted:
        return targeted
    return [item.id for item in form_def.items if item.id in items and items[item.id].has_entry]


def freeze(casebook: Casebook, study: StudyStatus, command: cmd.FreezeForm) -> Decision:
    _writable(casebook, study)
    if command.form not in casebook.forms:
        raise NotFound(f"form {command.form} has no data", field="form")
    if casebook.form(command.form).frozen:
        return Decision()
    return Decision([ev.FormFrozen(subject_id=casebook.subject_id, form=str(command.form))])


def unfreeze(casebook: Casebook, study: StudyStatus, command: cmd.UnfreezeForm) -> Decision:
    _writable(casebook, study)
    if not casebook.form(command.form).frozen:
        raise DomainRuleViolation(f"form {command.form} is not frozen", field="form")
    if not command.reason.strip():
        raise InvalidInput("unfreezing needs a reason", field="reason")
    return Decision(
        [ev.FormUnfrozen(subject_id=casebook.subject_id, form=str(command.form))], reasons={0: command.reason}
    )


def lock_casebook(casebook: Casebook, study: StudyStatus) -> Decision:
    _writable(casebook, study)
    return Decision([ev.CasebookLocked(subject_id=casebook.subject_id)])


def unlock_casebook(casebook: Casebook, study: StudyStatus, command: cmd.UnlockCasebook) -> Decision:
    if study.locked:
        raise DomainRuleViolation(f"study {study.study_id} is locked: unlock the study first")
    if not casebook.locked:
        raise DomainRuleViolation(f"the casebook of {casebook.subject_id} is not locked")
    if not command.reason.strip():
        raise InvalidInput("unlocking needs a reason", field="reason")
    return Decision([ev.CasebookUnlocked(subject_id=casebook.subject_id)], reasons={0: command.reason})


def lock_study(study: StudyStatus) -> list[ev.CaptureEvent]:
    if study.locked:
        raise DomainRuleViolation(f"study {study.study_id} is already locked")
    return [ev.StudyLocked(study_id=study.study_id)]


def unlock_study(study: StudyStatus, command: cmd.UnlockStudy) -> list[ev.CaptureEvent]:
    if not study.locked:
        raise DomainRuleViolation(f"study {study.study_id} is not locked")
    if not command.reason.strip():
        raise InvalidInput("unlocking the study needs a reason", field="reason")
    return [ev.StudyUnlocked(study_id=study.study_id)]
