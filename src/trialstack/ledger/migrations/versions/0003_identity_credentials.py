"""The credential store (password hashes, TOTP secrets, the session-signing key), kept outside the ledger.

Revision ID: 0003_identity_credentials
Revises: 0002_api_idempotency

Created with `checkfirst` semantics: databases initialised before this migration had these tables created at
start-up, and keep them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_identity_credentials"
down_revision = "0002_api_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "identity_credential" not in existing:
        op.create_table(
            "identity_credential",
            sa.Column("username", sa.String(64), primary_key=True),
            sa.Column("password_hash", sa.Text),
            sa.Column("totp_secret", sa.String(64)),
            sa.Column("totp_last_step", sa.BigInteger),
            sa.Column("updated_at", sa.String(27), nullable=False),
        )
    if "identity_secret" not in existing:
        op.create_table(
            "identity_secret",
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("identity_secret")
    op.drop_table("identity_credential")
