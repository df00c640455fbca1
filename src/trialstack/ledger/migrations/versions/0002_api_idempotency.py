"""Idempotency keys of API writes: a repeated request returns the stored response instead of acting twice.

Revision ID: 0002_api_idempotency
Revises: 0001_ledger
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialstack.ledger.schema import UtcTimestamp

revision = "0002_api_idempotency"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_idempotency",
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("principal", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UtcTimestamp, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("api_idempotency")
