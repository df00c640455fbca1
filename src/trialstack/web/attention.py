"""The study home's "what needs my attention": the work lists of a study home page, per what the user's roles may do.

Read-side only: a count and the first few rows of each list, each one SQL over a read model (capture's casebook
status rows, the queries read model), so the page costs the same with 50 subjects or 5,000.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection

from trialstack.capture import status_readmodel as status
from trialstack.identity.policy import Action, Principal
from trialstack.queries.readmodel import age_in_days, count_queries, oldest_queries
from trialstack.web.templating import can

LIMIT = 8
WHY_UNSIGNED = {"none": "not signed yet", "invalid": "data changed since the signature"}


@dataclass(frozen=True)
class WorkList:
    """The first rows of a list (at most LIMIT) and how many there are in all."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0

    def __bool__(self) -> bool:
        return self.total > 0


@dataclass
class Attention:
    to_answer: WorkList = field(default_factory=WorkList)
    to_review: WorkList = field(default_factory=WorkList)
    overdue: WorkList = field(default_factory=WorkList)
    to_verify: WorkList = field(default_factory=WorkList)
    to_sign: WorkList = field(default_factory=WorkList)
    incomplete: WorkList = field(default_factory=WorkList)
    subjects: int = 0


def _queries(
    connection: Connection, study_id: str, sites: frozenset[str] | None, query_status: str, today: str
) -> WorkList:
    rows = oldest_queries(connection, study_id, query_status, sites=sites, limit=LIMIT)
    aged = [{**row, "age_days": age_in_days(row, today)} for row in rows]
    return WorkList(aged, count_queries(connection, study_id, query_status, sites=sites))


def _forms(connection: Connection, study_id: str, sites: frozenset[str] | None, work: str) -> WorkList:
    rows = status.work_page(connection, study_id, work, sites, limit=LIMIT)
    shown = [{**row, "due": row["sdv_due"]} for row in rows]
    return WorkList(shown, status.count_work(connection, study_id, work, sites))


def _overdue(connection: Connection, study_id: str, sites: frozenset[str] | None, today: date) -> WorkList:
    iso = today.isoformat()
    rows = status.overdue_page(connection, study_id, iso, sites, limit=LIMIT)
    late = [{**row, "days": (today - date.fromisoformat(row["latest"])).days} for row in rows]
    return WorkList(late, status.count_overdue(connection, study_id, iso, sites))


def _unsigned(connection: Connection, study_id: str, sites: frozenset[str] | None) -> WorkList:
    rows = status.unsigned_page(connection, study_id, sites, limit=LIMIT)
    why = [{**row, "why": WHY_UNSIGNED[row["signature"]]} for row in rows]
    return WorkList(why, status.count_unsigned(connection, study_id, sites))


def attention(connection: Connection, principal: Principal, study_id: str, today: date) -> Attention:
    """The work lists of this user in this study at the sites they hold, oldest or most urgent first."""
    sites_held = principal.sites_in(study_id)
    sites = None if "*" in sites_held else sites_held
    result = Attention(subjects=status.count_subjects(connection, study_id, sites))
    iso = today.isoformat()
    if can(principal, Action.QUERY_ANSWER, study_id):
        result.to_answer = _queries(connection, study_id, sites, "open", iso)
    if can(principal, Action.QUERY_CLOSE, study_id):
        result.to_review = _queries(connection, study_id, sites, "answered", iso)
    if can(principal, Action.DATA_ENTER, study_id) or can(principal, Action.SDV_PERFORM, study_id):
        result.overdue = _overdue(connection, study_id, sites, today)
    if can(principal, Action.SDV_PERFORM, study_id):
        result.to_verify = _forms(connection, study_id, sites, status.VERIFY)
    if can(principal, Action.DATA_ENTER, study_id):
        result.incomplete = _forms(connection, study_id, sites, status.INCOMPLETE)
    if can(principal, Action.CASEBOOK_SIGN, study_id):
        result.to_sign = _unsigned(connection, study_id, sites)
    return result
