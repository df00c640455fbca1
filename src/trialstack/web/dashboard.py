"""The study dashboard's view model: which KRIs and charts each role's view shows, the Chart.js configurations
(plain JSON: `static/dashboard.js` draws them with the vendored Chart.js, ADR 9) and the drill-down links.

Every chart point links to the rows behind it, and every figure in the status table too; the table carries each
number in words, so a chart is never the only carrier of a value.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from trialstack.identity.policy import Principal, Role
from trialstack.ops.funnel import BREACH_COVERAGE, WARN_COVERAGE, poisson_limits
from trialstack.ops.kris import AGE_BANDS, CATALOGUE

VIEWS = {"sponsor": "Sponsor", "monitor": "Monitor and CRO lead", "data_manager": "Data management"}
"""The CRO lead works from the monitor's view: the same sites, SDV, queries and visits, across monitors."""
_ROLE_VIEWS = ((Role.MONITOR, "monitor"), (Role.DATA_MANAGER, "data_manager"))
CHARTS = {
    "sponsor": ("enrolment", "ae_funnel", "sae_funnel"),
    "monitor": ("queries_by_age", "sdv_backlog", "enrolment"),
    "data_manager": ("queries_by_age", "data_quality", "ae_funnel"),
}
_BLUE, _GREY, _RED, _AMBER = "#1d4ed8", "#64748b", "#b91c1c", "#b45309"
_BANDS = {"0-7": "#93c5fd", "8-14": "#60a5fa", "15-30": _AMBER, ">30": _RED}
COLUMNS = {
    "subject_id": "Subject", "site_id": "Site", "status": "Status", "screened_on": "Screened",
    "enrolled_on": "Enrolled", "failed_on": "Screen failed", "ended_on": "Ended", "query_id": "Query", "form": "Form",
    "item": "Item",
    "opened_on": "Opened", "closed_on": "Closed", "days_to_close": "Days to close", "age_days": "Age (days)",
    "band": "Age band", "visit": "Visit", "visit_date": "Visit date", "entered_on": "First entered",
    "lag_days": "Days after the visit", "check_id": "Edit check", "failures": "Failures", "failing": "Failing now",
    "last_failed_on": "Last failed", "epro_done": "Diary entries completed", "epro_missed": "Missed",
    "compliance": "Compliance %", "serious": "Serious", "kit": "Kit", "shipment_id": "Shipment",
    "changed_on": "Since", "randomized_on": "Randomized",
}  # fmt: skip
_HIDDEN = frozenset({"visit_id", "form_id"})


def default_view(principal: Principal, study_id: str) -> str:
    """The monitor's view for monitors (and CRO leads), data management for data managers, else the sponsor's."""
    roles = {grant.role for grant in principal.grants_in(study_id)}
    return next((view for role, view in _ROLE_VIEWS if role in roles), "sponsor")


def drill_url(study_id: str, kri: str, site_id: str | None = None) -> str:
    where = f"?site={quote(site_id)}" if site_id and site_id != "*" else ""
    return f"/studies/{quote(study_id)}/dashboard/kris/{kri}{where}"


def _number(text: str | None) -> float | None:
    return float(Decimal(text)) if text is not None else None


def _line(label: str, points: list[dict[str, float]], colour: str, dash: bool = False) -> dict[str, Any]:
    return {"type": "line", "label": label, "data": points, "borderColor": colour, "backgroundColor": colour,
            "pointRadius": 0, "borderWidth": 1.5, "borderDash": [6, 4] if dash else [], "stepped": "after",
            "fill": False}  # fmt: skip


def _funnel(report: dict[str, Any], kri: str, title: str) -> dict[str, Any]:
    """Each site at its subject-months against the study rate, with the 95 % and 99.8 % limits of its exposure."""
    figures = next(k for k in report["kris"] if k["kri"] == kri)
    sites = [s for s in figures["sites"] if s["value"] is not None and _number(s["denominator"])]
    centre = float(sites[0]["detail"]["funnel"]["centre"]) if sites else 0.0
    widest = max((_number(s["denominator"]) or 0.0 for s in sites), default=0.0) * 1.15
    grid = [widest * n / 40 for n in range(1, 41)] if widest else []
    datasets: list[dict[str, Any]] = [{
        "type": "scatter", "label": "Sites", "data": [{"x": _number(s["denominator"]), "y": _number(s["value"])}
                                                     for s in sites],
        "backgroundColor": [_RED if s["status"] in ("warn", "breach") else _BLUE for s in sites], "pointRadius": 6,
    }]  # fmt: skip
    if grid:
        datasets.append(_line("Study rate", [{"x": x, "y": centre} for x in grid], _GREY))
        for coverage, name, colour in ((WARN_COVERAGE, "95 %", _AMBER), (BREACH_COVERAGE, "99.8 %", _RED)):
            limits = [(x, poisson_limits(centre, x / 100, coverage)) for x in grid]
            datasets.append(_line(f"{name} limits", [{"x": x, "y": lim.upper} for x, lim in limits], colour, True))
            lower = _line(f"{name} lower", [{"x": x, "y": lim.lower} for x, lim in limits], colour, True)
            datasets.append({**lower, "hideLegend": True})
    words = ", ".join(f"site {s['site_id']}: {s['value']} at {s['denominator']} subject-months" for s in sites)
    return {
        "id": kri.lower(), "title": title, "label": f"{title}: {words or 'no time on study yet'}",
        "links": [[drill_url(report["study_id"], kri, s["site_id"]) for s in sites]],
        "config": {"type": "scatter", "data": {"datasets": datasets}, "options": {
            "scales": {"x": {"type": "linear", "min": 0, "title": {"display": True, "text": "subject-months"}},
                       "y": {"min": 0, "title": {"display": True, "text": "per 100 subject-months"}}},
        }},
    }  # fmt: skip


def _enrolment(report: dict[str, Any]) -> dict[str, Any]:
    rows = report["enrolment"]["*"]
    planned = [None if r["planned"] is None else float(r["planned"]) for r in rows]
    words = ", ".join(f"{r['month']}: {r['actual']} of {r['planned'] or '-'} planned" for r in rows)
    link = drill_url(report["study_id"], "ENROLMENT_VS_PLAN")
    return {
        "id": "enrolment", "title": "Enrolment against plan (cumulative)", "label": f"Enrolment: {words}",
        "links": [[link] * len(rows), [link] * len(rows)],
        "config": {"type": "line", "data": {"labels": [r["month"] for r in rows], "datasets": [
            {"label": "Enrolled", "data": [r["actual"] for r in rows], "borderColor": _BLUE, "backgroundColor": _BLUE,
             "pointRadius": 4},
            {"label": "Planned", "data": planned, "borderColor": _GREY, "backgroundColor": _GREY, "borderDash": [6, 4],
             "pointRadius": 2},
        ]}, "options": {"scales": {"y": {"beginAtZero": True}}}},
    }  # fmt: skip


def _per_site(report: dict[str, Any], kri: str) -> dict[str, Any]:
    return next(k for k in report["kris"] if k["kri"] == kri)


def _queries_by_age(report: dict[str, Any]) -> dict[str, Any]:
    figures = _per_site(report, "OPEN_QUERIES")
    sites = figures["sites"]
    datasets = [{"label": f"{band} days", "data": [s["detail"]["bands"][band] for s in sites],
                 "backgroundColor": _BANDS[band]} for band, _low, _high in AGE_BANDS]  # fmt: skip
    words = "; ".join(f"site {s['site_id']}: " + ", ".join(f"{n} aged {b}" for b, n in s["detail"]["bands"].items())
                      for s in sites)  # fmt: skip
    link = [drill_url(report["study_id"], "OPEN_QUERIES", s["site_id"]) for s in sites]
    return {
        "id": "queries_by_age", "title": "Open queries by age (days)", "label": f"Open queries by age: {words}",
        "links": [link] * len(datasets),
        "config": {"type": "bar", "data": {"labels": [s["site_id"] for s in sites], "datasets": datasets},
                   "options": {"scales": {"x": {"stacked": True}, "y": {"stacked": True, "beginAtZero": True}}}},
    }  # fmt: skip


def _bars(report: dict[str, Any], chart_id: str, title: str, kris: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """One bar per site for each KRI, coloured by the KRI's status there."""
    datasets, links, words = [], [], []
    sites = report["sites"]
    for (kri, colour), figures in ((pair, _per_site(report, pair[0])) for pair in kris):
        label = CATALOGUE_LABELS[kri]
        rows = {s["site_id"]: s for s in figures["sites"]}
        values = [_number(rows[site]["value"]) if site in rows else None for site in sites]
        datasets.append({"label": label, "data": values, "borderColor": colour, "borderWidth": 2,
                         "backgroundColor": [_RED if rows.get(site, {}).get("status") == "breach" else colour
                                             for site in sites]})  # fmt: skip
        links.append([drill_url(report["study_id"], kri, site) for site in sites])
        words.append(f"{label}: " + ", ".join(f"site {site} {rows[site]['value']}" for site in sites if site in rows))
    return {
        "id": chart_id, "title": title, "label": f"{title}: " + "; ".join(words), "links": links,
        "config": {"type": "bar", "data": {"labels": sites, "datasets": datasets},
                   "options": {"scales": {"y": {"beginAtZero": True}}}},
    }  # fmt: skip


CATALOGUE_LABELS = {kri.value: info.label for kri, info in CATALOGUE.items()}


def charts(report: dict[str, Any], view: str) -> list[dict[str, Any]]:
    """The Chart.js configurations of a view, each with its drill-down links and a label in words."""
    built = {
        "enrolment": lambda: _enrolment(report),
        "ae_funnel": lambda: _funnel(report, "AE_RATE", "Adverse events per 100 subject-months (funnel plot)"),
        "sae_funnel": lambda: _funnel(report, "SAE_RATE", "Serious adverse events per 100 subject-months (funnel)"),
        "queries_by_age": lambda: _queries_by_age(report),
        "sdv_backlog": lambda: _bars(report, "sdv_backlog", "Forms awaiting SDV, and missing pages",
                                     (("SDV_BACKLOG", _BLUE), ("MISSING_PAGES", _AMBER))),
        "data_quality": lambda: _bars(report, "data_quality", "Days: query turnaround, and visit to data entry",
                                      (("QUERY_TURNAROUND", _GREY), ("DATA_ENTRY_LAG", _AMBER))),
    }  # fmt: skip
    return [built[chart]() for chart in CHARTS[view]]


def view_kris(report: dict[str, Any], view: str) -> list[dict[str, Any]]:
    """The KRIs of a view, in catalogue order, each with its drill-down links."""
    shown = []
    for kri in report["kris"]:
        if view in kri["views"]:
            links = {row["site_id"]: drill_url(report["study_id"], kri["kri"], row["site_id"]) for row in kri["sites"]}
            shown.append({**kri, "links": links, "link": drill_url(report["study_id"], kri["kri"])})
    return shown


def columns_of(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The drill-down table's columns, in the rows' order, with their headings."""
    keys = list(rows[0]) if rows else []
    return [(key, COLUMNS.get(key, key.replace("_", " ").capitalize())) for key in keys if key not in _HIDDEN]
