"""Documents in the personal-data vault: content-addressed, encrypted under the owner's data key.

Revision ID: 0006_vault_documents
Revises: 0005_sign_in_throttle

- `vault_document`: one row per (owner, SHA-256 of the plaintext); `sealed` is nonce ‖ AES-256-GCM ciphertext under
  the owner's data key, with the hash and owner as associated data. A signed consent copy names the participant, so
  it is personal data: erasure deletes these rows as it deletes `vault_value`'s, and the destroyed key already makes
  any copy of them (a backup) unreadable.

Like the rest of the vault this is not a projection: `trialstack rebuild` leaves it alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_vault_documents"
down_revision = "0005_sign_in_throttle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_document",
        sa.Column("owner", sa.String(300), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.String(27), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vault_document")
