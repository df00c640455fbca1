"""Sign-in throttle and session activity in the database, so every server process of a deployment shares them.

Revision ID: 0005_sign_in_throttle
Revises: 0004_personal_data_vault

- `identity_sign_in_failure`: failed sign-ins per hashed (username, client address), for the throttle
  (`identity/throttle.py`); rows leave as they fall out of the window.
- `identity_session_activity`: when each web session was last used, for the idle timeout (`identity/sessions.py`).

Like the credential store these are not projections: `trialstack rebuild` leaves them alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_sign_in_throttle"
down_revision = "0004_personal_data_vault"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "identity_sign_in_failure",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("attempt_key", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.String(27), nullable=False),
    )
    op.create_index("ix_identity_sign_in_failure_key_time", "identity_sign_in_failure", ["attempt_key", "failed_at"])
    op.create_index("ix_identity_sign_in_failure_time", "identity_sign_in_failure", ["failed_at"])
    op.create_table(
        "identity_session_activity",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("last_seen_at", sa.String(27), nullable=False),
    )
    op.create_index("ix_identity_session_activity_last_seen_at", "identity_session_activity", ["last_seen_at"])


def downgrade() -> None:
    op.drop_table("identity_session_activity")
    op.drop_table("identity_sign_in_failure")
