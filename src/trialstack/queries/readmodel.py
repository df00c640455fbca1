"""The query read model: one row per query with its status, texts and aging."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, Text, func, select

from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.rowfold import FoldingProjection, Key, RowStore
from trialstack.queries import events as ev

readmodel_metadata = MetaData()

query_table = Table(
    "rm_query",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("query_id", String(100), primary_key=True),
    Column("subject_id", String(64), nullable=False, index=True),
    Column("site_id", String(20), nullable=False, index=True),
    Column("form", String(100), nullable=False),
    Column("item", String(40), nullable=False),
    Column("check_id", String(64)),
    Column("status", String(20), nullable=False),
    Column("text", Text, nullable=False),
    Column("answer", Text),
    Column("resolution", Text),
    Column("opened_on", String(10), nullable=False),
    Column("opened_by", String(200), nullable=False),
    Column("last_action_at", String(27), nullable=False),
    Column("closed_at", String(27)),
    Column("rounds", Integer, nullable=False),
)

_STATUS = {
    "QueryOpened": "open",
    "QueryAnswered": "answered",
    "QueryRequeried": "open",
    "QueryClosed": "closed",
    "QueryCancelled": "cancelled",
}


class QueryReadModel(FoldingProjection):
    name = "queries.queries"
    tables = (query_table,)
    event_types = frozenset(
        cls.__name__ for cls in (ev.QueryOpened, ev.QueryAnswered, ev.QueryRequeried, ev.QueryClosed, ev.QueryCancelled)
    )

    def touches(self, event: RecordedEvent) -> Iterable[tuple[Table, Key]]:
        yield query_table, (event.study_id, event.payload["query_id"])

    def fold(self, event: RecordedEvent, rows: RowStore) -> None:
        payload = event.payload
        kind = event.event_type
        if kind == "QueryOpened":
            row: dict[str, Any] | None = {
                "study_id": event.study_id,
                "query_id": payload["query_id"],
                "subject_id": payload["subject_id"],
                "site_id": payload["site_id"],
                "form": payload["form"],
                "item": payload["item"],
                "check_id": payload.get("check_id"),
                "text": payload["text"],
                "answer": None,
                "resolution": None,
                "opened_on": payload["opened_on"],
                "opened_by": event.actor_id,
                "closed_at": None,
                "rounds": 1,
            }
        else:
            row = rows.get(query_table, (event.study_id, payload["query_id"]))
        if row is None:
            return
        row["status"] = _STATUS[kind]
        row["last_action_at"] = event.recorded_at
        if kind == "QueryAnswered":
            row["answer"] = payload["text"]
        elif kind == "QueryRequeried":
            row.update(text=payload["text"], answer=None, rounds=row["rounds"] + 1)
        elif kind == "QueryClosed":
            row.update(resolution=payload["resolution"], closed_at=event.recorded_at)
        elif kind == "QueryCancelled":
            row.update(resolution=event.reason, closed_at=event.recorded_at)
        rows.put(query_table, row)


def count_for_subject(connection: Connection, study_id: str, subject_id: str) -> int:
    statement = select(func.count()).select_from(query_table)
    statement = statement.where(query_table.c.study_id == study_id, query_table.c.subject_id == subject_id)
    return int(connection.execute(statement).scalar_one())


def open_system_query(connection: Connection, study_id: str, subject_id: str, form: str, check_id: str) -> str | None:
    """The open or answered system query of a check on a form instance, if any."""
    statement = select(query_table.c.query_id).where(
        query_table.c.study_id == study_id,
        query_table.c.subject_id == subject_id,
        query_table.c.form == form,
        query_table.c.check_id == check_id,
        query_table.c.status.in_(("open", "answered")),
    )
    value = connection.execute(statement).scalar()
    return str(value) if value is not None else None


def system_query_state(
    connection: Connection, study_id: str, subject_id: str, form: str, check_id: str
) -> tuple[int, str | None]:
    """In one read: how many queries the subject has, and the open or answered system query of a check on a form
    instance, if any (what the edit-check policy needs before it opens a query). Driver-level SQL: it runs on
    every save that fails a check."""
    m = "%s" if connection.dialect.name == "postgresql" else "?"
    sql = (
        f"SELECT count(*), max(CASE WHEN form = {m} AND check_id = {m} AND status IN ('open', 'answered')"
        f" THEN query_id END) FROM {query_table.name} WHERE study_id = {m} AND subject_id = {m}"
    )
    count, query_id = connection.exec_driver_sql(sql, (form, check_id, study_id, subject_id)).one()
    return int(count), str(query_id) if query_id is not None else None


def list_queries(
    connection: Connection,
    study_id: str,
    *,
    sites: frozenset[str] | None = None,
    status: str | None = None,
    subject_id: str | None = None,
) -> list[dict[str, Any]]:
    statement = select(query_table).where(query_table.c.study_id == study_id)
    if sites is not None:
        statement = statement.where(query_table.c.site_id.in_(sorted(sites)))
    if status is not None:
        statement = statement.where(query_table.c.status == status)
    if subject_id is not None:
        statement = statement.where(query_table.c.subject_id == subject_id)
    return [dict(r._mapping) for r in connection.execute(statement.order_by(query_table.c.query_id))]


def get_query(connection: Connection, study_id: str, query_id: str) -> dict[str, Any] | None:
    statement = select(query_table).where(query_table.c.study_id == study_id, query_table.c.query_id == query_id)
    row = connection.execute(statement).first()
    return dict(row._mapping) if row is not None else None


def age_in_days(row: dict[str, Any], today: str) -> int:
    """Days a query has been (or was) open: from opening to closing, or to today."""
    end = (row["closed_at"] or today)[:10]
    return (date.fromisoformat(end) - date.fromisoformat(row["opened_on"])).days


def _filtered(statement: Any, study_id: str, sites: frozenset[str] | None, status: str) -> Any:
    statement = statement.where(query_table.c.study_id == study_id, query_table.c.status == status)
    return statement.where(query_table.c.site_id.in_(sorted(sites))) if sites is not None else statement


def count_queries(connection: Connection, study_id: str, status: str, *, sites: frozenset[str] | None = None) -> int:
    statement = _filtered(select(func.count()).select_from(query_table), study_id, sites, status)
    return int(connection.execute(statement).scalar_one())


def oldest_queries(
    connection: Connection, study_id: str, status: str, *, sites: frozenset[str] | None = None, limit: int = 8
) -> list[dict[str, Any]]:
    """The queries of one status opened longest ago (the oldest first), at most `limit`."""
    statement = _filtered(select(query_table), study_id, sites, status)
    statement = statement.order_by(query_table.c.opened_on, query_table.c.query_id).limit(limit)
    return [dict(r._mapping) for r in connection.execute(statement)]


def counts_by_form(
    connection: Connection, study_id: str, subject_ids: list[str], status: str = "open"
) -> dict[tuple[str, str], int]:
    """(subject, form instance) -> how many queries of one status, for some subjects: one grouped SQL."""
    if not subject_ids:
        return {}
    statement = (
        select(query_table.c.subject_id, query_table.c.form, func.count())
        .where(
            query_table.c.study_id == study_id,
            query_table.c.subject_id.in_(subject_ids),
            query_table.c.status == status,
        )
        .group_by(query_table.c.subject_id, query_table.c.form)
    )
    return {(str(subject), str(form)): int(n) for subject, form, n in connection.execute(statement)}
