"""The credential store: password hashes, TOTP secrets and the session-signing key, deliberately outside the ledger.

TOTP secrets must be readable to check a code, so they are not hashed but encrypted in the personal-data vault
(under the account's own key); the table keeps only the vault reference.

The ledger is append-only, copied into audit packages and relayed to every integration through the outbox; a
password hash there could never be erased and would be handed to anyone reading the event stream for offline
guessing. So the ledger records that a password changed (`PasswordChanged`) and this table holds the hash. These
tables are not projections: `trialstack rebuild` leaves them alone (docs/identity.md, "Where credentials live");
the Alembic migration 0003 creates them.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Engine, MetaData, String, Table, Text, select
from sqlalchemy.dialects import postgresql, sqlite

from trialstack.ledger.vault import Vault

credential_metadata = MetaData()

credential = Table(
    "identity_credential",
    credential_metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", Text),
    Column("totp_secret", String(64)),
    Column("totp_last_step", BigInteger),
    Column("updated_at", String(27), nullable=False),
)

platform_secret = Table(
    "identity_secret",
    credential_metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

SECRET_KEY_ENV = "TRIALSTACK_SECRET_KEY"
_VAULT_REF = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""A vault reference (a UUID); a base32 TOTP secret in clear never matches it."""
_SESSION_KEY = "session-signing-key"


def _upsert(connection: Connection, table: Table, key: str, values: dict[str, Any]) -> None:
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    key_column = next(iter(table.primary_key.columns)).name
    statement = dialect_insert(table).values({key_column: key, **values})
    connection.execute(statement.on_conflict_do_update(index_elements=[key_column], set_=values))


def set_password_hash(connection: Connection, username: str, password_hash: str, at: str) -> None:
    _upsert(connection, credential, username, {"password_hash": password_hash, "updated_at": at})


def password_hash(connection: Connection, username: str) -> str | None:
    value = connection.execute(select(credential.c.password_hash).where(credential.c.username == username)).scalar()
    return str(value) if value is not None else None


def _vault_owner(username: str) -> str:
    return f"user:{username}"


def set_totp_secret(connection: Connection, vault: Vault, username: str, secret: str | None, at: str) -> None:
    """Keep the shared TOTP secret encrypted in the vault: the column holds only its vault reference."""
    ref = vault.seal(connection, _vault_owner(username), [secret], at)[0].ref if secret is not None else None
    _upsert(connection, credential, username, {"totp_secret": ref, "totp_last_step": None, "updated_at": at})


def totp_secret(connection: Connection, vault: Vault, username: str, at: str) -> tuple[str | None, int | None]:
    """The shared TOTP secret and the last time step accepted (a code is never accepted twice).

    A secret stored in clear by a version before the vault is sealed on this first read.
    """
    row = connection.execute(
        select(credential.c.totp_secret, credential.c.totp_last_step).where(credential.c.username == username)
    ).first()
    if row is None or row[0] is None:
        return None, None
    stored, last_step = str(row[0]), (int(row[1]) if row[1] is not None else None)
    if _VAULT_REF.fullmatch(stored) is None:
        ref = vault.seal(connection, _vault_owner(username), [stored], at)[0].ref
        connection.execute(credential.update().where(credential.c.username == username).values(totp_secret=ref))
        return stored, last_step
    return vault.reveal(connection, _vault_owner(username), [stored])[stored], last_step


def record_totp_step(connection: Connection, username: str, step: int) -> None:
    connection.execute(credential.update().where(credential.c.username == username).values(totp_last_step=step))


def session_key(engine: Engine) -> str:
    """The key that signs session cookies: TRIALSTACK_SECRET_KEY, else one drawn for this database and kept in it.

    Keeping it in the database lets every API worker of one deployment share it without configuration; setting
    the variable keeps it out of database backups.
    """
    configured = os.environ.get(SECRET_KEY_ENV)
    if configured:
        return configured
    with engine.begin() as connection:
        found = connection.execute(select(platform_secret.c.value).where(platform_secret.c.name == _SESSION_KEY))
        value = found.scalar()
        if value is not None:
            return str(value)
        dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        connection.execute(
            dialect_insert(platform_secret)
            .values(name=_SESSION_KEY, value=secrets.token_urlsafe(48))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        stored = connection.execute(select(platform_secret.c.value).where(platform_secret.c.name == _SESSION_KEY))
        return str(stored.scalar_one())
