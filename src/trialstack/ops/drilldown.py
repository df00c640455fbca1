"""The rows behind a KRI: the subjects, queries, forms, visits, checks or kits its figure counts, as of a day.

Each row names its site and what it is about (`subject_id`, `form`, `visit`, `query_id`, `kit`), so an adapter
links it to the casebook, the form or the query; rows are limited to the sites the user sees.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Select, Table, and_, not_, select

from trialstack.errors import NotFound
from trialstack.ops.figures import (
    DISPENSING_DAYS,
    MISSING_PAGE_DAYS,
    OPEN,
    dispensing_visits,
    sdv_forms,
    windowed_visits,
)
from trialstack.ops.kris import AGE_BANDS, CATALOGUE
from trialstack.ops.readmodel import check_table, form_table, kit_table, query_table, subject_table, visit_table
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.definition_kris import KriId

Rows = list[dict[str, Any]]
MAX_ROWS = 2000


def _where(statement: Select[Any], table: Table, study_id: str, sites: frozenset[str] | None) -> Select[Any]:
    statement = statement.where(table.c.study_id == study_id)
    return statement.where(table.c.site_id.in_(sorted(sites))) if sites is not None else statement


def _rows(connection: Connection, statement: Select[Any]) -> Rows:
    return [dict(row) for row in connection.execute(statement.limit(MAX_ROWS)).mappings()]


class _Context:
    def __init__(
        self, connection: Connection, definition: StudyDefinition, study_id: str, as_of: date,
        sites: frozenset[str] | None,
    ) -> None:  # fmt: skip
        self.connection, self.definition, self.study_id, self.as_of, self.sites = (
            connection, definition, study_id, as_of, sites
        )  # fmt: skip

    def select(self, table: Table, *columns: Any) -> Select[Any]:
        return _where(select(*(columns or (table,))), table, self.study_id, self.sites)


def _subjects(ctx: _Context) -> Rows:
    s = subject_table.c
    columns = (s.subject_id, s.site_id, s.status, s.screened_on, s.enrolled_on, s.failed_on, s.ended_on)
    return _rows(ctx.connection, ctx.select(subject_table, *columns).order_by(s.site_id, s.subject_id))


def _screen_failures(ctx: _Context) -> Rows:
    s = subject_table.c
    columns = (s.subject_id, s.site_id, s.status, s.screened_on, s.enrolled_on, s.failed_on)
    decided = ctx.select(subject_table, *columns).where(s.enrolled_on.is_not(None) | s.failed_on.is_not(None))
    return _rows(ctx.connection, decided.order_by(s.failed_on.is_(None), s.site_id, s.subject_id))


def _band(age: int) -> str:
    return next(name for name, low, high in AGE_BANDS if low <= age and (high is None or age <= high))


def _open_queries(ctx: _Context, over: int = -1) -> Rows:
    q = query_table.c
    columns = (q.query_id, q.site_id, q.subject_id, q.form, q.item, q.status, q.opened_on)
    rows = _rows(ctx.connection, ctx.select(query_table, *columns).where(q.status.in_(OPEN)).order_by(q.opened_on))
    for row in rows:
        row["age_days"] = max((ctx.as_of - date.fromisoformat(row["opened_on"])).days, 0)
        row["band"] = _band(row["age_days"])
    return [row for row in rows if row["age_days"] > over]


def _closed_queries(ctx: _Context) -> Rows:
    q = query_table.c
    columns = (q.query_id, q.site_id, q.subject_id, q.form, q.item, q.opened_on, q.closed_on, q.days_to_close)
    return _rows(ctx.connection, ctx.select(query_table, *columns).where(q.status == "closed")
                 .order_by(q.days_to_close.desc(), q.query_id))  # fmt: skip


def _entry_lag(ctx: _Context) -> Rows:
    f = form_table.c
    columns = (f.subject_id, f.site_id, f.form, f.visit, f.entered_on, f.lag_days)
    return _rows(ctx.connection, ctx.select(form_table, *columns).where(f.lag_days.is_not(None))
                 .order_by(f.lag_days.desc(), f.subject_id, f.form))  # fmt: skip


def _sdv_backlog(ctx: _Context) -> Rows:
    f = form_table.c
    columns = (f.subject_id, f.site_id, f.form, f.visit, f.entered_on)
    pending = ctx.select(form_table, *columns).where(not_(f.sdv_complete), f.form_id.in_(sdv_forms(ctx.definition)))
    return _rows(ctx.connection, pending.order_by(f.entered_on, f.subject_id, f.form))


def _missing_pages(ctx: _Context) -> Rows:
    v, f = visit_table.c, form_table.c
    cutoff = (ctx.as_of - timedelta(days=MISSING_PAGE_DAYS)).isoformat()
    columns = (v.subject_id, v.site_id, v.visit, v.visit_id, v.visit_date)
    dated = ctx.select(visit_table, *columns).where(v.visit_date.is_not(None), v.visit_date <= cutoff)
    visits = _rows(ctx.connection, dated.order_by(v.visit_date, v.subject_id))
    entered: dict[tuple[str, str], set[str]] = defaultdict(set)
    for subject_id, visit, form_id in ctx.connection.execute(
        ctx.select(form_table, f.subject_id, f.visit, f.form_id).where(f.visit.is_not(None))
    ):
        entered[(subject_id, visit)].add(form_id)
    rows: Rows = []
    for row in visits:
        declared = ctx.definition.visit(row["visit_id"])
        for form_id in declared.forms if declared is not None else ():
            if form_id not in entered[(row["subject_id"], row["visit"])]:
                rows.append({**row, "form": f"{row['visit']}.{form_id}", "form_id": form_id})
    return rows


def _out_of_window(ctx: _Context) -> Rows:
    v = visit_table.c
    columns = (v.subject_id, v.site_id, v.visit, v.visit_id, v.visit_date)
    chosen = ctx.select(visit_table, *columns).where(v.visit_id.in_(windowed_visits(ctx.definition)), v.out_of_window)
    return _rows(ctx.connection, chosen.where(v.visit_date.is_not(None)).order_by(v.visit_date, v.subject_id))


def _checks(ctx: _Context) -> Rows:
    c = check_table.c
    columns = (c.subject_id, c.site_id, c.check_id, c.form, c.item, c.failures, c.failing, c.last_failed_on)
    return _rows(ctx.connection, ctx.select(check_table, *columns).where(not_(c.window_check))
                 .order_by(c.failures.desc(), c.subject_id, c.check_id))  # fmt: skip


def _epro(ctx: _Context) -> Rows:
    s = subject_table.c
    rows = _rows(ctx.connection, ctx.select(subject_table, s.subject_id, s.site_id, s.epro_done, s.epro_missed)
                 .where(s.epro_done + s.epro_missed > 0).order_by(s.site_id, s.subject_id))  # fmt: skip
    for row in rows:
        row["compliance"] = f"{row['epro_done'] * 100 / (row['epro_done'] + row['epro_missed']):.1f}"
    return sorted(rows, key=lambda row: (float(row["compliance"]), row["subject_id"]))


def _adverse_events(ctx: _Context, serious: bool) -> Rows:
    f = form_table.c
    chosen = ctx.select(form_table, f.subject_id, f.site_id, f.form, f.entered_on, f.serious).where(f.ae)
    if serious:
        chosen = chosen.where(f.serious)
    return _rows(ctx.connection, chosen.order_by(f.entered_on, f.subject_id, f.form))


def _kits(ctx: _Context) -> Rows:
    k = kit_table.c
    columns = (k.kit, k.site_id, k.shipment_id, k.status, k.changed_on)
    return _rows(ctx.connection, ctx.select(kit_table, *columns).where(k.status == "quarantined").order_by(k.kit))


def _dispensing(ctx: _Context) -> Rows:
    v, s = visit_table.c, subject_table.c
    cutoff = (ctx.as_of - timedelta(days=DISPENSING_DAYS)).isoformat()
    chosen = (
        ctx.select(visit_table, v.subject_id, v.site_id, v.visit, v.visit_date, s.randomized_on)
        .select_from(visit_table.join(subject_table, and_(s.study_id == v.study_id, s.subject_id == v.subject_id)))
        .where(v.visit_id.in_(dispensing_visits(ctx.definition)), v.visit_date.is_not(None), v.visit_date <= cutoff,
               s.randomized_on.is_not(None), v.visit_date >= s.randomized_on, v.kits == 0)
    )  # fmt: skip
    return _rows(ctx.connection, chosen.order_by(v.visit_date, v.subject_id))


_DRILL: dict[KriId, Callable[[_Context], Rows]] = {
    KriId.ENROLMENT_VS_PLAN: _subjects,
    KriId.SCREEN_FAILURE_RATE: _screen_failures,
    KriId.OPEN_QUERIES: _open_queries,
    KriId.QUERY_AGE_OVER_30: lambda ctx: _open_queries(ctx, 30),
    KriId.QUERY_TURNAROUND: _closed_queries,
    KriId.DATA_ENTRY_LAG: _entry_lag,
    KriId.MISSING_PAGES: _missing_pages,
    KriId.SDV_BACKLOG: _sdv_backlog,
    KriId.VISITS_OUT_OF_WINDOW: _out_of_window,
    KriId.EDIT_CHECK_FAILURES: _checks,
    KriId.EPRO_COMPLIANCE: _epro,
    KriId.AE_RATE: lambda ctx: _adverse_events(ctx, False),
    KriId.SAE_RATE: lambda ctx: _adverse_events(ctx, True),
    KriId.KITS_QUARANTINED: _kits,
    KriId.DISPENSING_MISSED: _dispensing,
}


def kri_id(text: str) -> KriId:
    """The KRI named in a URL, or NotFound listing the KRIs."""
    try:
        return KriId(text.upper())
    except ValueError:
        known = ", ".join(k.value for k in KriId)
        raise NotFound(f"no KRI {text!r} (KRIs: {known})", field="kri") from None


def kri_rows(
    connection: Connection,
    definition: StudyDefinition,
    study_id: str,
    kri: KriId,
    as_of: date,
    sites: frozenset[str] | None,
    site_id: str | None = None,
) -> dict[str, Any]:
    """The rows behind `kri` at the sites the user sees (one site when `site_id` is given), at most MAX_ROWS."""
    if site_id is not None:
        sites = frozenset({site_id}) if sites is None or site_id in sites else frozenset()
    rows = _DRILL[kri](_Context(connection, definition, study_id, as_of, sites))
    info = CATALOGUE[kri]
    return {
        "study_id": study_id, "kri": kri.value, "label": info.label, "measures": info.measures,
        "as_of": as_of.isoformat(), "site_id": site_id, "rows": rows, "truncated": len(rows) >= MAX_ROWS,
    }  # fmt: skip
