"""What a casebook looks like to its readers: the visit matrix and one form with its items, checks and queries.

Read-side only: built from the folded casebook and the StudyVersion in force; nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from trialstack.capture.checks import StudyRules, is_visible
from trialstack.capture.decide import sdv_items
from trialstack.capture.model import Casebook, FormState, ItemState
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.protocol.definition import Form, ItemType, Visit


@dataclass(frozen=True)
class FormStatus:
    form: str
    form_id: str
    name: str
    status: str
    entered: int
    required_missing: list[str]
    sdv_complete: bool
    frozen: bool
    failing_checks: list[str]


def form_status(rules: StudyRules, casebook: Casebook, key: FormKey) -> FormStatus:
    """not_started / in_progress / complete (every required, visible item answered or marked not done)."""
    form = rules.definition.form(key.form_id)
    state = casebook.forms.get(key) or FormState(key)
    entered = sum(1 for entry in state.items.values() if entry.has_entry)
    missing: list[str] = []
    if form is not None:
        for item in form.items:
            answered = (state.items.get(item.id) or ItemState()).has_entry
            if item.required and item.derived is None and not answered and is_visible(rules, casebook, key, item.id):
                missing.append(item.id)
    status = "not_started" if entered == 0 else ("in_progress" if missing else "complete")
    due = sdv_items(rules, key, state.items)
    failing = sorted(check for check, form_key in casebook.failing if form_key == str(key))
    return FormStatus(
        form=str(key),
        form_id=key.form_id,
        name=form.name if form is not None else key.form_id,
        status=status,
        entered=entered,
        required_missing=missing,
        sdv_complete=bool(due) and set(due) <= state.verified,
        frozen=state.frozen,
        failing_checks=failing,
    )


def visit_window(rules: StudyRules, casebook: Casebook, visit: Visit) -> tuple[str, str] | None:
    anchor = casebook.visit_dates.get(VisitKey(rules.definition.schedule.anchor))
    if anchor is None:
        return None
    dates = visit.window_dates(date.fromisoformat(anchor))
    return (dates[0].isoformat(), dates[1].isoformat()) if dates else None


def casebook_matrix(rules: StudyRules, casebook: Casebook) -> dict[str, Any]:
    """The visit × form matrix of one subject: planned visits (with windows once the anchor is known) and logs."""
    visits: list[dict[str, Any]] = []
    for visit in rules.definition.schedule.visits:
        keys = _instances(casebook, visit)
        for key in keys:
            window = visit_window(rules, casebook, visit)
            visit_date = casebook.visit_dates.get(key)
            visits.append(
                {
                    "visit": str(key),
                    "visit_id": visit.id,
                    "name": visit.name if not key.repeat else f"{visit.name} {key.repeat}",
                    "type": visit.type.value,
                    "date": visit_date,
                    "window": {"earliest": window[0], "latest": window[1]} if window else None,
                    "out_of_window": (f"{visit.id}-WINDOW", str(key)) in casebook.failing,
                    "forms": [
                        form_status(rules, casebook, FormKey(f, key)).__dict__
                        if visit_date
                        else _planned(rules, f, key)
                        for f in visit.forms
                    ],
                }
            )
    logs = [form_status(rules, casebook, key).__dict__ for key in sorted(casebook.forms) if key.is_log]
    return {"visits": visits, "log_forms": logs}


def _instances(casebook: Casebook, visit: Visit) -> list[VisitKey]:
    if not visit.repeating:
        return [VisitKey(visit.id)]
    return sorted(key for key in casebook.visit_dates if key.visit_id == visit.id)


def _planned(rules: StudyRules, form_id: str, key: VisitKey) -> dict[str, Any]:
    form = rules.definition.form(form_id)
    return {
        "form": f"{key}.{form_id}",
        "form_id": form_id,
        "name": form.name if form else form_id,
        "status": "not_started",
    }


def target_date(rules: StudyRules, casebook: Casebook, visit: Visit) -> str | None:
    anchor = casebook.visit_dates.get(VisitKey(rules.definition.schedule.anchor))
    if anchor is None or visit.day is None:
        return None
    offset = visit.day - 1 if visit.day > 0 else visit.day
    return (date.fromisoformat(anchor) + timedelta(days=offset)).isoformat()


def form_detail(rules: StudyRules, casebook: Casebook, key: FormKey) -> dict[str, Any]:
    """One form instance: each item with its definition, value, visibility, SDV and failing checks."""
    form: Form | None = rules.definition.form(key.form_id)
    state = casebook.forms.get(key) or FormState(key)
    failing_by_item: dict[str, list[str]] = {}
    checks = {c.check.id: c.check for c in rules.checks.get(key.form_id, ())}
    for check_id, form_key in casebook.failing:
        if form_key == str(key) and check_id in checks:
            failing_by_item.setdefault(checks[check_id].item, []).append(check_id)
    items = []
    for item in form.items if form is not None else ():
        entry = state.items.get(item.id)
        codelist = rules.definition.codelist(item.codelist) if item.codelist else None
        items.append(
            {
                "item": item.id,
                "label": item.label,
                "type": item.type.value,
                "unit": item.unit,
                "required": item.required,
                "derived": item.derived is not None,
                "visible": is_visible(rules, casebook, key, item.id),
                "choices": [{"code": c.code, "decode": c.decode} for c in codelist.items] if codelist else None,
                "value": entry.value if entry else None,
                "not_done_reason": entry.not_done_reason if entry else None,
                "verified": item.id in state.verified,
                "sdv_required": item.sdv,
                "failing_checks": sorted(failing_by_item.get(item.id, [])),
                "is_date": item.type in (ItemType.DATE, ItemType.DATETIME),
            }
        )
    status = form_status(rules, casebook, key)
    visit = rules.definition.visit(key.visit.visit_id) if key.visit is not None else None
    return {
        "form": str(key),
        "form_id": key.form_id,
        "name": form.name if form is not None else key.form_id,
        "visit": str(key.visit) if key.visit is not None else None,
        "visit_name": visit.name if visit is not None else None,
        "visit_date": casebook.visit_dates.get(key.visit) if key.visit is not None else None,
        "status": status.status,
        "required_missing": status.required_missing,
        "sdv_complete": status.sdv_complete,
        "frozen": state.frozen,
        "locked": casebook.locked,
        "items": items,
    }
