"""The personal-data vault: per-owner data keys wrapped by the master key, and the encrypted values.

Revision ID: 0004_personal_data_vault
Revises: 0003_identity_credentials

Like the credential store these tables are not projections: `trialstack rebuild` leaves them alone, and
erasure (crypto-shredding) clears a wrapped key, which the ledger's triggers would never allow on its own rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_personal_data_vault"
down_revision = "0003_identity_credentials"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_master",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_check", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(27), nullable=False),
    )
    op.create_table(
        "vault_key",
        sa.Column("owner", sa.String(300), primary_key=True),
        sa.Column("wrapped_key", sa.LargeBinary),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.Column("erased_at", sa.String(27)),
    )
    op.create_table(
        "vault_value",
        sa.Column("ref", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(300), nullable=False, index=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.String(27), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vault_value")
    op.drop_table("vault_key")
    op.drop_table("vault_master")
