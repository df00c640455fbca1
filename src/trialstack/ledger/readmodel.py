"""The ledger's own read model: one row per stream (aggregate) with its current version and last event."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table, select

from trialstack.ledger import store
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.wiring import ALL_EVENTS

readmodel_metadata = MetaData()

stream_index = Table(
    "rm_stream_index",
    readmodel_metadata,
    Column("stream_type", String(64), primary_key=True),
    Column("stream_id", String(200), primary_key=True),
    Column("study_id", String(64), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("last_event_type", String(100), nullable=False),
    Column("last_study_seq", BigInteger, nullable=False),
)


class StreamIndex:
    """Which streams exist, at which version; used by listings and by `rebuild` benchmarks."""

    name = "ledger.stream_index"
    tables = (stream_index,)
    event_types = ALL_EVENTS

    def apply(self, connection: Connection, events: Sequence[RecordedEvent]) -> None:
        latest: dict[tuple[str, str], RecordedEvent] = {}
        for event in events:
            latest[(event.stream_type, event.stream_id)] = event
        marker = store.marker(connection)
        store.write(
            connection,
            f"INSERT INTO {stream_index.name} (stream_type, stream_id, study_id, version, last_event_type,"
            f" last_study_seq) VALUES ({', '.join([marker] * 6)}) ON CONFLICT (stream_type, stream_id) DO UPDATE SET"
            " version = excluded.version, last_event_type = excluded.last_event_type,"
            " last_study_seq = excluded.last_study_seq",
            [
                (e.stream_type, e.stream_id, e.study_id, e.stream_version, e.event_type, e.study_seq)
                for e in latest.values()
            ],
        )


def list_streams(connection: Connection, study_id: str, stream_type: str | None = None) -> list[dict[str, object]]:
    statement = select(stream_index).where(stream_index.c.study_id == study_id)
    if stream_type is not None:
        statement = statement.where(stream_index.c.stream_type == stream_type)
    return [dict(r._mapping) for r in connection.execute(statement.order_by(stream_index.c.stream_id))]
