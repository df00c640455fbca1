"""The visit matrix as pages show it: capture's `casebook_matrix` arranged as forms × visits, with each cell's
queries, SDV, freeze and lock marks, and a one-line summary per visit for the subject list. Read-side only."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from trialstack.capture.checks import StudyRules
from trialstack.capture.decide import new_visit_refusal
from trialstack.capture.model import Casebook
from trialstack.capture.status_readmodel import visit_summary
from trialstack.capture.views import casebook_matrix

ACTIVE_STATUSES = frozenset({"screening", "enrolled"})


@dataclass(frozen=True)
class Cell:
    form: str
    name: str
    status: str
    open_queries: int = 0
    answered_queries: int = 0
    sdv_done: bool = False
    frozen: bool = False
    failing: int = 0


@dataclass(frozen=True)
class VisitColumn:
    visit: str
    visit_id: str
    name: str
    date: str | None
    earliest: str | None
    latest: str | None
    out_of_window: bool
    overdue: bool
    cells: dict[str, Cell] = field(default_factory=dict)
    not_applicable: bool = False
    """Never dated and no longer possible: the subject failed screening or withdrew before it."""

    @property
    def summary(self) -> str:
        """not_started / in_progress / complete for the visit as a whole."""
        return visit_summary(self.date, (cell.status for cell in self.cells.values()))

    @property
    def open_queries(self) -> int:
        return sum(cell.open_queries for cell in self.cells.values())


@dataclass(frozen=True)
class Grid:
    columns: list[VisitColumn]
    form_rows: list[tuple[str, str]]
    log_forms: list[Cell]
    repeating: list[tuple[str, str, str]]
    """(visit id, name, next instance) of repeating visits: what `+ add` creates."""

    def column(self, visit: str) -> VisitColumn | None:
        return next((column for column in self.columns if column.visit == visit), None)


@dataclass(frozen=True)
class VisitSummary:
    """One visit of one subject on the subject list, read from capture's casebook status rows."""

    visit: str
    date: str | None
    earliest: str | None
    summary: str
    overdue: bool
    open_queries: int


def visit_summaries(
    rows: list[dict[str, Any]], open_by_form: dict[str, int], rules: StudyRules, today: date
) -> dict[str, VisitSummary]:
    """A subject's visit status rows by visit, each with the open queries on its scheduled forms."""
    scheduled = {visit.id: visit.forms for visit in rules.definition.schedule.visits}
    iso = today.isoformat()
    result = {}
    for row in rows:
        forms = {f"{row['visit']}.{form_id}" for form_id in scheduled.get(row["visit_id"], ())}
        result[row["visit"]] = VisitSummary(
            visit=row["visit"],
            date=row["visit_date"],
            earliest=row["earliest"],
            summary=row["summary"],
            overdue=row["due_by"] is not None and row["due_by"] < iso,
            open_queries=sum(n for form, n in open_by_form.items() if form in forms) if open_by_form else 0,
        )
    return result


def query_counts(queries: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str]]:
    """Open and answered queries per form instance."""
    opened = Counter(q["form"] for q in queries if q["status"] == "open")
    answered = Counter(q["form"] for q in queries if q["status"] == "answered")
    return opened, answered


def _cell(raw: dict[str, Any], opened: Counter[str], answered: Counter[str]) -> Cell:
    return Cell(
        form=raw["form"],
        name=raw["name"],
        status=raw["status"],
        open_queries=opened[raw["form"]],
        answered_queries=answered[raw["form"]],
        sdv_done=bool(raw.get("sdv_complete")),
        frozen=bool(raw.get("frozen")),
        failing=len(raw.get("failing_checks", ())),
    )


def is_overdue(visit: dict[str, Any], subject_status: str | None, today: date) -> bool:
    """A visit whose window closed before today without a visit date, for a subject still on study."""
    window = visit.get("window")
    if visit.get("date") or window is None or subject_status not in ACTIVE_STATUSES:
        return False
    return date.fromisoformat(window["latest"]) < today


def build_grid(rules: StudyRules, casebook: Casebook, queries: list[dict[str, Any]], today: date) -> Grid:
    matrix = casebook_matrix(rules, casebook)
    opened, answered = query_counts(queries)
    status = casebook.status.value if casebook.status is not None else None
    columns: list[VisitColumn] = []
    form_rows: dict[str, str] = {}
    for visit in matrix["visits"]:
        window = visit.get("window") or {}
        declared = rules.definition.visit(visit["visit_id"])
        earliest = date.fromisoformat(window["earliest"]) if window else None
        closed = declared is not None and new_visit_refusal(casebook, declared, earliest) is not None
        cells = {}
        for raw in visit["forms"]:
            form_rows.setdefault(raw["form_id"], raw["name"])
            cells[raw["form_id"]] = _cell(raw, opened, answered)
        columns.append(
            VisitColumn(
                visit=visit["visit"],
                visit_id=visit["visit_id"],
                name=visit["name"],
                date=visit.get("date"),
                earliest=window.get("earliest"),
                latest=window.get("latest"),
                out_of_window=bool(visit.get("out_of_window")),
                overdue=is_overdue(visit, status, today),
                cells=cells,
                not_applicable=closed and not visit.get("date"),
            )
        )
    repeating = []
    for planned in rules.definition.schedule.visits:
        if planned.repeating and new_visit_refusal(casebook, planned, None) is None:
            done = [c for c in columns if c.visit_id == planned.id]
            repeating.append((planned.id, planned.name, f"{planned.id}.{len(done) + 1}"))
            for form_id in planned.forms:
                form = rules.definition.form(form_id)
                form_rows.setdefault(form_id, form.name if form is not None else form_id)
    logs = [_cell(raw, opened, answered) for raw in matrix["log_forms"]]
    return Grid(columns, list(form_rows.items()), logs, repeating)


def next_log_record(grid: Grid, form_id: str) -> str:
    """The key of the next record of a log form (`AE.3` after two adverse events)."""
    taken = [int(cell.form.split(".")[1]) for cell in grid.log_forms if cell.form.split(".")[0] == form_id]
    return f"{form_id}.{max(taken, default=0) + 1}"
