"""Read model of published StudyVersions, and the in-process cache of definitions by content hash."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Boolean, Column, Connection, MetaData, String, Table, Text, select, update

from trialstack.ledger.canonical import canonical_bytes
from trialstack.ledger.envelope import RecordedEvent
from trialstack.protocol.events import StudyVersionPublished
from trialstack.protocol.version import StudyVersion, definition_from_canonical_json, study_version

readmodel_metadata = MetaData()

study_version_table = Table(
    "rm_study_version",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("study_seq", BigInteger, primary_key=True),
    Column("version_hash", String(64), nullable=False),
    Column("protocol_version", String(100), nullable=False),
    Column("published_at", String(27), nullable=False),
    Column("source_format", String(20), nullable=False),
    Column("in_force", Boolean, nullable=False),
    Column("definition", Text, nullable=False),
)


class StudyVersions:
    """One row per publication; exactly one row per study is in force."""

    name = "protocol.study_versions"
    tables = (study_version_table,)
    event_types = frozenset({StudyVersionPublished.__name__})

    def apply(self, connection: Connection, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            payload = event.payload
            connection.execute(
                update(study_version_table)
                .where(study_version_table.c.study_id == event.study_id)
                .values(in_force=False)
            )
            connection.execute(
                study_version_table.insert().values(
                    study_id=event.study_id,
                    study_seq=event.study_seq,
                    version_hash=payload["version_hash"],
                    protocol_version=payload["protocol_version"],
                    published_at=event.recorded_at,
                    source_format=payload["source_format"],
                    in_force=True,
                    definition=_definition_text(event),
                )
            )


def _definition_text(event: RecordedEvent) -> str:
    """The definition's canonical JSON (a canonical sub-object re-serializes to the same bytes)."""
    return canonical_bytes(event.payload["definition"]).decode("utf-8")


@dataclass(frozen=True)
class PublishedVersion:
    study_id: str
    study_seq: int
    version_hash: str
    protocol_version: str
    published_at: str
    in_force: bool


_PARSED: dict[str, StudyVersion] = {}


def _version(connection: Connection, study_id: str, version_hash: str) -> StudyVersion | None:
    """Parse a stored definition once per content hash (versions are immutable); later calls read no text."""
    cached = _PARSED.get(version_hash)
    if cached is not None:
        return cached
    row = connection.execute(
        select(study_version_table.c.definition)
        .where(study_version_table.c.study_id == study_id, study_version_table.c.version_hash == version_hash)
        .limit(1)
    ).first()
    if row is None:
        return None
    version = study_version(definition_from_canonical_json(str(row[0]).encode()))
    if version.hash != version_hash:
        raise ValueError(f"stored definition hashes to {version.hash}, expected {version_hash}")
    _PARSED[version_hash] = version
    return version


def version_in_force(connection: Connection, study_id: str) -> StudyVersion | None:
    """The StudyVersion in force, or None when the study was never loaded."""
    version_hash = connection.execute(
        select(study_version_table.c.version_hash).where(
            study_version_table.c.study_id == study_id, study_version_table.c.in_force.is_(True)
        )
    ).scalar()
    return _version(connection, study_id, str(version_hash)) if version_hash is not None else None


def version_by_hash(connection: Connection, study_id: str, version_hash: str) -> StudyVersion | None:
    return _version(connection, study_id, version_hash)


def list_versions(connection: Connection, study_id: str | None = None) -> list[PublishedVersion]:
    statement = select(
        study_version_table.c.study_id,
        study_version_table.c.study_seq,
        study_version_table.c.version_hash,
        study_version_table.c.protocol_version,
        study_version_table.c.published_at,
        study_version_table.c.in_force,
    ).order_by(study_version_table.c.study_id, study_version_table.c.study_seq)
    if study_id is not None:
        statement = statement.where(study_version_table.c.study_id == study_id)
    return [PublishedVersion(*row) for row in connection.execute(statement)]
