"""The KRIs of a study as of a day, read from ops' read model: each site's facts, the figures, the report that the
API and the dashboard show, and the status last recorded for each KRI (`trialstack ops kri-check`).

Reads only: a handful of aggregate queries per report, so the server and the demo's daily check stay cheap as a
study grows. A user who sees some sites gets their sites, and a study row over those sites; the funnel plots keep
the whole study's rate as their centre (a site is compared with the study, not with the user's other sites).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, not_, select

from trialstack.ops.events import STUDY_WIDE
from trialstack.ops.kris import CATALOGUE, NOT_AVAILABLE, Figure, SiteFacts, combine, enrolment_series, figures
from trialstack.ops.readmodel import (
    check_table,
    form_table,
    kit_table,
    kri_table,
    query_table,
    study_table,
    subject_table,
    visit_table,
)
from trialstack.protocol.definition import StudyDefinition

MISSING_PAGE_DAYS = 7
"""A form is a missing page once its visit is this many days old and it was never entered."""
DISPENSING_DAYS = 1
OPEN = ("open", "answered")


def _day(text: str | None, default: date) -> date:
    return date.fromisoformat(text) if text else default


def sdv_forms(definition: StudyDefinition) -> list[str]:
    return [form.id for form in definition.forms if any(item.sdv for item in form.items)]


def windowed_visits(definition: StudyDefinition) -> list[str]:
    """Visits with a nominal day, the anchor aside (it defines day 1, so it is never out of its window)."""
    anchor = definition.schedule.anchor
    return [visit.id for visit in definition.schedule.visits if visit.day is not None and visit.id != anchor]


def dispensing_visits(definition: StudyDefinition) -> list[str]:
    return [d.visit for d in definition.supply.dispensing] if definition.supply is not None else []


class _Tally:
    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.months: dict[str, Counter[str]] = defaultdict(Counter)
        self.ages: dict[str, list[int]] = defaultdict(list)

    def add(self, site: str, **amounts: int) -> None:
        self.counts[site].update(amounts)

    def facts(self, site: str) -> SiteFacts:
        return SiteFacts(site_id=site, enrolled_by_month=dict(sorted(self.months[site].items())),
                         open_query_ages=tuple(sorted(self.ages[site])), **self.counts[site])  # fmt: skip


def site_facts(connection: Connection, definition: StudyDefinition, study_id: str, as_of: date) -> list[SiteFacts]:
    """Every site's facts as of `as_of`: the sites the study declares, then any other that has data."""
    tally = _Tally()
    subjects = select(subject_table).where(subject_table.c.study_id == study_id)
    for s in connection.execute(subjects).mappings():
        site = s["site_id"]
        start = _day(s["screened_on"], as_of)
        end = min(_day(s["ended_on"], as_of), as_of)
        tally.add(site, screened=1, enrolled=int(s["enrolled_on"] is not None),
                  screen_failed=int(s["failed_on"] is not None), subject_days=max((end - start).days, 0),
                  epro_done=s["epro_done"], epro_missed=s["epro_missed"])  # fmt: skip
        if s["enrolled_on"] is not None:
            tally.months[site][s["enrolled_on"][:7]] += 1
    q = query_table.c
    queries = select(q.site_id, q.status, q.opened_on, q.days_to_close).where(
        q.study_id == study_id, q.status != "cancelled"
    )
    for site, status, opened_on, days_to_close in connection.execute(queries):
        if status in OPEN:
            tally.ages[site].append(max((as_of - date.fromisoformat(opened_on)).days, 0))
        elif days_to_close is not None:
            tally.add(site, closed_queries=1, close_days=days_to_close)
    f = form_table.c
    verify = set(sdv_forms(definition))
    forms = (
        select(f.site_id, f.form_id, func.count(), func.sum(f.lag_days), func.count(f.lag_days),
               func.sum(case((not_(f.sdv_complete), 1), else_=0)), func.sum(case((f.ae, 1), else_=0)),
               func.sum(case((and_(f.ae, f.serious), 1), else_=0)))
        .where(f.study_id == study_id).group_by(f.site_id, f.form_id)
    )  # fmt: skip
    for site, form_id, count, lag_days, lag_forms, unverified, aes, saes in connection.execute(forms):
        tally.add(site, forms_entered=count, lag_days=int(lag_days or 0), lag_forms=lag_forms, aes=int(aes or 0),
                  saes=int(saes or 0), sdv_backlog=int(unverified or 0) if form_id in verify else 0)  # fmt: skip
    _visit_facts(connection, definition, study_id, as_of, tally)
    c = check_table.c
    checks = (
        select(c.site_id, func.sum(c.failures)).where(c.study_id == study_id, not_(c.window_check)).group_by(c.site_id)
    )
    for site, failures in connection.execute(checks):
        tally.add(site, check_failures=int(failures or 0))
    k = kit_table.c
    held = select(k.site_id, func.count()).where(k.study_id == study_id, k.status == "quarantined").group_by(k.site_id)
    for site, count in connection.execute(held):
        tally.add(site, kits_quarantined=count)
    declared = [site.id for site in definition.sites]
    others = sorted((set(tally.counts) | set(tally.ages)) - set(declared))
    return [tally.facts(site) for site in [*declared, *others]]


def _visit_facts(
    connection: Connection, definition: StudyDefinition, study_id: str, as_of: date, tally: _Tally
) -> None:
    v = visit_table.c
    windowed = set(windowed_visits(definition))
    dated = (
        select(v.site_id, v.visit_id, func.count(), func.sum(case((v.out_of_window, 1), else_=0)))
        .where(v.study_id == study_id, v.visit_date.is_not(None)).group_by(v.site_id, v.visit_id)
    )  # fmt: skip
    for site, visit_id, count, out in connection.execute(dated):
        if visit_id in windowed:
            tally.add(site, windowed_visits=count, out_of_window=int(out or 0))
    cutoff = (as_of - timedelta(days=MISSING_PAGE_DAYS)).isoformat()
    expected = {visit.id: len(visit.forms) for visit in definition.schedule.visits}
    old = (
        select(v.site_id, v.visit_id, func.count(), func.sum(v.forms_entered))
        .where(v.study_id == study_id, v.visit_date.is_not(None), v.visit_date <= cutoff)
        .group_by(v.site_id, v.visit_id)
    )  # fmt: skip
    for site, visit_id, count, entered in connection.execute(old):
        wanted = count * expected.get(visit_id, 0)
        tally.add(site, expected_pages=wanted, entered_pages=min(int(entered or 0), wanted))
    dispensing = dispensing_visits(definition)
    if not dispensing:
        return
    s = subject_table.c
    due = (
        select(v.site_id, func.count(), func.sum(case((v.kits == 0, 1), else_=0)))
        .select_from(visit_table.join(subject_table, and_(s.study_id == v.study_id, s.subject_id == v.subject_id)))
        .where(v.study_id == study_id, v.visit_id.in_(dispensing), v.visit_date.is_not(None),
               v.visit_date <= (as_of - timedelta(days=DISPENSING_DAYS)).isoformat(), s.randomized_on.is_not(None),
               v.visit_date >= s.randomized_on)
        .group_by(v.site_id)
    )  # fmt: skip
    for site, count, missed in connection.execute(due):
        tally.add(site, dispensing_due=count, dispensing_missed=int(missed or 0))


def study_figures(connection: Connection, definition: StudyDefinition, study_id: str, as_of: date) -> list[Figure]:
    """Every KRI of every site and study-wide, judged: what a KRI check compares with the statuses recorded."""
    return figures(site_facts(connection, definition, study_id, as_of), definition.kris, as_of)


def last_seq(connection: Connection, study_id: str) -> int:
    """The position of the last event ops folded for the study (0: none): it moves when a KRI may have changed."""
    found = connection.execute(select(study_table.c.last_seq).where(study_table.c.study_id == study_id)).scalar()
    return int(found or 0)


def recorded_statuses(connection: Connection, study_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(KRI, site) → the status last recorded by a KRI check, with its value, threshold and since when."""
    rows = connection.execute(select(kri_table).where(kri_table.c.study_id == study_id)).mappings()
    return {(row["kri"], row["site_id"]): dict(row) for row in rows}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _figure_json(figure: Figure, recorded: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "site_id": figure.site_id,
        "value": _text(figure.value),
        "status": figure.status,
        "threshold": _text(figure.threshold),
        "numerator": figure.numerator,
        "denominator": _text(figure.denominator),
        "detail": dict(figure.detail),
        "recorded": {"status": recorded["status"], "since": recorded["since"]} if recorded else None,
    }


def kri_report(
    connection: Connection, definition: StudyDefinition, study_id: str, as_of: date, sites: frozenset[str] | None
) -> dict[str, Any]:
    """Every KRI per visible site and over them (`sites` None: every site, and the row is study-wide), as JSON."""
    every = site_facts(connection, definition, study_id, as_of)
    shown = [facts for facts in every if sites is None or facts.site_id in sites]
    found = figures(shown, definition.kris, as_of, reference=combine(STUDY_WIDE, every))
    recorded = recorded_statuses(connection, study_id) if sites is None else {
        key: row for key, row in recorded_statuses(connection, study_id).items() if key[1] in sites
    }  # fmt: skip
    kris = definition.kris
    report = []
    for kri, info in CATALOGUE.items():
        mine = [figure for figure in found if figure.kri is kri]
        threshold = kris.threshold(kri) if kris is not None else None
        report.append({
            "kri": kri.value, "label": info.label, "unit": info.unit, "method": info.method,
            "direction": info.direction.value, "measures": info.measures, "views": sorted(info.views),
            "threshold": threshold.model_dump(mode="json", exclude_defaults=False) if threshold else None,
            "study": next(_figure_json(f, recorded.get((kri.value, f.site_id))) for f in mine
                          if f.site_id == STUDY_WIDE),
            "sites": [_figure_json(f, recorded.get((kri.value, f.site_id))) for f in mine if f.site_id != STUDY_WIDE],
        })  # fmt: skip
    screened = sum(f.screened for f in shown)
    return {
        "study_id": study_id,
        "as_of": as_of.isoformat(),
        "scope": "study" if sites is None else "your sites",
        "sites": [facts.site_id for facts in shown],
        "screened": screened,
        "enrolled": sum(f.enrolled for f in shown),
        "kris": report,
        "enrolment": enrolment_series(shown, kris, as_of),
        "not_available": [{"kri": kri, "label": label, "reason": reason} for kri, label, reason in NOT_AVAILABLE],
        "seq": last_seq(connection, study_id),
    }
