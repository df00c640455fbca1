"""The ledger: ledger_event (append-only, enforced by triggers), study_head, relay_position, projection_state.

Revision ID: 0001_ledger
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialstack.ledger.schema import UtcTimestamp

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

SQLITE_TRIGGERS = [
    """CREATE TRIGGER ledger_event_no_update BEFORE UPDATE ON ledger_event
       BEGIN SELECT RAISE(ABORT, 'ledger_event is append-only: UPDATE is refused'); END""",
    """CREATE TRIGGER ledger_event_no_delete BEFORE DELETE ON ledger_event
       BEGIN SELECT RAISE(ABORT, 'ledger_event is append-only: DELETE is refused'); END""",
]

POSTGRES_TRIGGERS = [
    """CREATE FUNCTION ledger_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'ledger_event is append-only: % is refused', TG_OP
           USING ERRCODE = 'insufficient_privilege';
       END $$""",
    """CREATE TRIGGER ledger_event_no_update_delete BEFORE UPDATE OR DELETE ON ledger_event
       FOR EACH ROW EXECUTE FUNCTION ledger_event_refuse_change()""",
    """CREATE TRIGGER ledger_event_no_truncate BEFORE TRUNCATE ON ledger_event
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_event_refuse_change()""",
]


def upgrade() -> None:
    op.create_table(
        "ledger_event",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("study_id", sa.String(64), nullable=False),
        sa.Column("study_seq", sa.BigInteger, nullable=False),
        sa.Column("stream_type", sa.String(64), nullable=False),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(64), nullable=False),
        sa.Column("on_behalf_of", sa.String(200)),
        sa.Column("reason", sa.Text),
        sa.Column("occurred_at", UtcTimestamp, nullable=False),
        sa.Column("recorded_at", UtcTimestamp, nullable=False),
        sa.Column("source", sa.String(100)),
        sa.Column("external_id", sa.String(200)),
        sa.Column("correlation_id", sa.String(100)),
        sa.Column("causation_id", sa.String(100)),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("study_id", "study_seq", name="uq_ledger_event_study_seq"),
        sa.UniqueConstraint("stream_type", "stream_id", "stream_version", name="uq_ledger_event_stream_version"),
        sa.UniqueConstraint("source", "external_id", name="uq_ledger_event_source_external_id"),
    )
    op.create_index("ix_ledger_event_event_type", "ledger_event", ["study_id", "event_type"])
    op.create_table(
        "study_head",
        sa.Column("study_id", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "relay_position",
        sa.Column("subscriber", sa.String(100), primary_key=True),
        sa.Column("study_id", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "projection_state",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for statement in POSTGRES_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger is never dropped by a migration")
