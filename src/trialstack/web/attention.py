"""The study home's "what needs my attention": the work lists of a study home page, per what the user's roles may do.

Read-side only, from the read models and the folded casebooks of the subjects the user may see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection

from trialstack.capture.checks import StudyRules
from trialstack.capture.decide import sdv_items
from trialstack.capture.handlers import read_casebook
from trialstack.capture.model import Casebook
from trialstack.capture.readmodel import latest_signature, list_subjects
from trialstack.capture.views import casebook_matrix, form_status
from trialstack.identity.policy import Action, Principal
from trialstack.ledger.cache import StreamStateCache
from trialstack.queries.readmodel import age_in_days, list_queries
from trialstack.web.grid import is_overdue
from trialstack.web.templating import can

LIMIT = 8


@dataclass
class Attention:
    to_answer: list[dict[str, Any]] = field(default_factory=list)
    to_review: list[dict[str, Any]] = field(default_factory=list)
    overdue: list[dict[str, Any]] = field(default_factory=list)
    to_verify: list[dict[str, Any]] = field(default_factory=list)
    to_sign: list[dict[str, Any]] = field(default_factory=list)
    incomplete: list[dict[str, Any]] = field(default_factory=list)
    subjects: int = 0


def _queries(
    connection: Connection, study_id: str, sites: frozenset[str] | None, status: str, today: str
) -> list[dict[str, Any]]:
    rows = list_queries(connection, study_id, sites=sites, status=status)
    aged = [{**row, "age_days": age_in_days(row, today)} for row in rows]
    return sorted(aged, key=lambda row: -row["age_days"])


def _casebook_lists(
    result: Attention, rules: StudyRules, casebook: Casebook, principal: Principal, study_id: str, today: date
) -> None:
    subject = casebook.subject_id
    status = casebook.status.value if casebook.status is not None else None
    if can(principal, Action.DATA_ENTER, study_id) or can(principal, Action.SDV_PERFORM, study_id):
        for visit in casebook_matrix(rules, casebook)["visits"]:
            if is_overdue(visit, status, today):
                late = (today - date.fromisoformat(visit["window"]["latest"])).days
                result.overdue.append({"subject_id": subject, "visit": visit["visit"], "name": visit["name"],
                                       "latest": visit["window"]["latest"], "days": late})  # fmt: skip
    for key, state in casebook.forms.items():
        shown = form_status(rules, casebook, key)
        if can(principal, Action.SDV_PERFORM, study_id):
            due = [i for i in sdv_items(rules, key, state.items) if i not in state.verified and i in state.items]
            if due and shown.status == "complete":
                result.to_verify.append({"subject_id": subject, "form": str(key), "name": shown.name, "due": len(due)})
        if can(principal, Action.DATA_ENTER, study_id) and shown.status == "in_progress":
            result.incomplete.append(
                {"subject_id": subject, "form": str(key), "name": shown.name, "missing": len(shown.required_missing)}
            )


def attention(
    connection: Connection,
    cache: StreamStateCache,
    principal: Principal,
    study_id: str,
    rules: StudyRules,
    today: date,
) -> Attention:
    """The work lists of this user in this study, oldest or most urgent first."""
    sites_held = principal.sites_in(study_id)
    sites = None if "*" in sites_held else sites_held
    result = Attention()
    iso = today.isoformat()
    if can(principal, Action.QUERY_ANSWER, study_id):
        result.to_answer = _queries(connection, study_id, sites, "open", iso)
    if can(principal, Action.QUERY_CLOSE, study_id):
        result.to_review = _queries(connection, study_id, sites, "answered", iso)
    subjects = list_subjects(connection, study_id, sites)
    result.subjects = len(subjects)
    wants_casebooks = any(
        can(principal, action, study_id) for action in (Action.DATA_ENTER, Action.SDV_PERFORM, Action.CASEBOOK_SIGN)
    )
    if not wants_casebooks:
        return result
    for row in subjects:
        casebook = read_casebook(connection, cache, study_id, row["subject_id"])
        _casebook_lists(result, rules, casebook, principal, study_id, today)
        if can(principal, Action.CASEBOOK_SIGN, study_id) and casebook.forms:
            signature = latest_signature(connection, study_id, row["subject_id"])
            if signature is None or not signature.valid:
                why = "not signed yet" if signature is None else "data changed since the signature"
                result.to_sign.append({"subject_id": row["subject_id"], "why": why, "status": row["status"]})
    result.overdue.sort(key=lambda row: -row["days"])
    return result
