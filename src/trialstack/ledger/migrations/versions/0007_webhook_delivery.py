"""Webhook delivery state: where each subscription's delivery stands, and its dead letters.

Revision ID: 0007_webhook_delivery
Revises: 0006_vault_documents

- `webhook_delivery`: one row per subscription: the event being retried, its failed attempts and the time of the
  next, the last outcome, a requested replay from a position, and the lease that keeps one delivery in flight per
  subscription across deliverer processes. The position itself is in `relay_position` (subscriber `webhook:<id>`).
- `webhook_dead_letter`: events a subscription gave up on after its last attempt, until a replay delivers them.

Delivery is operational, not clinical: the subscriptions are facts in the ledger, these rows are not, and
`trialstack rebuild` leaves them alone (docs/decisions/0012-webhooks.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_webhook_delivery"
down_revision = "0006_vault_documents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_delivery",
        sa.Column("study_id", sa.String(64), primary_key=True),
        sa.Column("subscription_id", sa.String(64), primary_key=True),
        sa.Column("study_seq", sa.BigInteger),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.String(27)),
        sa.Column("last_attempt_at", sa.String(27)),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_seq", sa.BigInteger),
        sa.Column("delivered_at", sa.String(27)),
        sa.Column("rewind_to", sa.BigInteger),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("lease_until", sa.String(27)),
    )
    op.create_table(
        "webhook_dead_letter",
        sa.Column("study_id", sa.String(64), primary_key=True),
        sa.Column("subscription_id", sa.String(64), primary_key=True),
        sa.Column("study_seq", sa.BigInteger, primary_key=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("dead_at", sa.String(27), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("replay_requested_by", sa.String(200)),
        sa.Column("replay_requested_at", sa.String(27)),
        sa.Column("delivered_at", sa.String(27)),
    )
    op.create_index("ix_webhook_dead_letter_state", "webhook_dead_letter", ["study_id", "subscription_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_webhook_dead_letter_state", table_name="webhook_dead_letter")
    op.drop_table("webhook_dead_letter")
    op.drop_table("webhook_delivery")
