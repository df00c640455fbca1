"""Documents in the personal-data vault on SQLite and PostgreSQL: content-addressed, encrypted, erased with owners."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from trialstack.bootstrap import Platform, bootstrap
from trialstack.ledger.backup import backup, restore
from trialstack.ledger.vault import (
    PersonalDataErased,
    Vault,
    VaultKeyError,
    VaultKeySource,
    new_master_key,
    vault_document,
)
from trialstack.settings import Settings

AT = "2026-03-04T10:20:00.000000Z"
LATER = "2026-03-05T08:00:00.000000Z"
OWNER = "subject:CARDIO-1/DE-001-0007"
CONTENT = "%PDF-1.3 signed copy of Dmitriy Müller".encode()


def test_a_document_round_trips_by_its_hash_encrypted_and_only_for_its_owner(platform: Platform) -> None:
    vault = platform.vault
    with platform.engine.begin() as connection:
        sha256 = vault.store_document(connection, OWNER, CONTENT, AT)
        (stored,) = connection.execute(select(vault_document.c.sealed)).scalars().all()
    assert sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert b"M\xc3\xbcller" not in bytes(stored) and b"%PDF" not in bytes(stored)
    with platform.engine.connect() as connection:
        assert vault.fetch_document(connection, OWNER, sha256) == CONTENT
        assert vault.fetch_document(connection, "subject:CARDIO-1/DE-001-0008", sha256) is None
        assert vault.fetch_document(connection, OWNER, hashlib.sha256(b"other").hexdigest()) is None


def test_storing_the_same_content_again_is_a_no_op_returning_the_same_hash(platform: Platform) -> None:
    vault = platform.vault
    with platform.engine.begin() as connection:
        first = vault.store_document(connection, OWNER, CONTENT, AT)
        (original,) = connection.execute(select(vault_document.c.sealed)).scalars().all()
    with platform.engine.begin() as connection:
        again = vault.store_document(connection, OWNER, CONTENT, LATER)
        other = vault.store_document(connection, OWNER, b"another copy", LATER)
    with platform.engine.connect() as connection:
        rows = connection.execute(
            select(vault_document.c.sha256, vault_document.c.sealed, vault_document.c.created_at).order_by(
                vault_document.c.created_at
            )
        ).all()
        assert vault.fetch_document(connection, OWNER, other) == b"another copy"
    assert again == first != other
    assert len(rows) == 2
    assert (rows[0].sha256, bytes(rows[0].sealed), rows[0].created_at) == (first, bytes(original), AT)


def test_a_tampered_or_moved_ciphertext_fails_with_a_vault_key_error(platform: Platform) -> None:
    vault = platform.vault
    with platform.engine.begin() as connection:
        sha256 = vault.store_document(connection, OWNER, CONTENT, AT)
        moved = vault.store_document(connection, OWNER, b"a different document", AT)
        blob = bytearray(
            connection.execute(select(vault_document.c.sealed).where(vault_document.c.sha256 == sha256)).scalar_one()
        )
        blob[-1] ^= 0x01
        connection.execute(vault_document.update().where(vault_document.c.sha256 == sha256).values(sealed=bytes(blob)))
        other = connection.execute(select(vault_document.c.sealed).where(vault_document.c.sha256 == sha256)).scalar()
        connection.execute(vault_document.update().where(vault_document.c.sha256 == moved).values(sealed=other))
    with platform.engine.connect() as connection:
        with pytest.raises(VaultKeyError, match="authentication tag"):
            vault.fetch_document(connection, OWNER, sha256)
        with pytest.raises(VaultKeyError, match="authentication tag"):
            vault.fetch_document(connection, OWNER, moved)


def test_erasure_deletes_the_owners_documents_and_refuses_new_ones(platform: Platform) -> None:
    vault = platform.vault
    with platform.engine.begin() as connection:
        mine = vault.store_document(connection, OWNER, CONTENT, AT)
        theirs = vault.store_document(connection, "subject:CARDIO-1/DE-001-0008", CONTENT, AT)
        assert mine == theirs, "the address is the content's hash; the owner is the other half of the key"
        vault.erase(connection, OWNER, LATER)
    with platform.engine.connect() as connection:
        assert vault.fetch_document(connection, OWNER, mine) is None
        assert vault.fetch_document(connection, "subject:CARDIO-1/DE-001-0008", theirs) == CONTENT
        owners = connection.execute(select(vault_document.c.owner)).scalars().all()
        assert owners == ["subject:CARDIO-1/DE-001-0008"]
    with platform.engine.begin() as connection, pytest.raises(PersonalDataErased):
        vault.store_document(connection, OWNER, CONTENT, LATER)


def test_a_wrong_master_key_fetches_and_stores_nothing(platform: Platform) -> None:
    with platform.engine.begin() as connection:
        sha256 = platform.vault.store_document(connection, OWNER, CONTENT, AT)
    wrong = Vault(VaultKeySource(key=new_master_key()))
    with platform.engine.connect() as connection, pytest.raises(VaultKeyError, match="not the key"):
        wrong.fetch_document(connection, OWNER, sha256)
    with platform.engine.begin() as connection, pytest.raises(VaultKeyError, match="not the key"):
        wrong.store_document(connection, "subject:CARDIO-1/DE-001-0009", b"x", AT)
    with platform.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(vault_document)).scalar_one() == 1


def test_a_document_stored_in_a_transaction_that_rolls_back_is_not_kept(platform: Platform) -> None:
    with platform.engine.connect() as connection:
        with connection.begin() as transaction:
            sha256 = platform.vault.store_document(connection, OWNER, CONTENT, AT)
            transaction.rollback()
        assert connection.execute(select(func.count()).select_from(vault_document)).scalar_one() == 0
    with platform.engine.begin() as connection:
        assert platform.vault.store_document(connection, OWNER, CONTENT, AT) == sha256


def test_backup_and_restore_carry_the_documents(
    platform: Platform, database_url: str, second_database_url: str, tmp_path: Path
) -> None:
    with platform.engine.begin() as connection:
        sha256 = platform.vault.store_document(connection, OWNER, CONTENT, AT)
    out = tmp_path / "with-documents.tsbackup"
    manifest = backup(database_url, out)
    assert "vault_document" in manifest.tables
    restore(out, second_database_url)
    restored = bootstrap(Settings(database_url=second_database_url))
    try:
        with restored.engine.connect() as connection:
            assert restored.vault.fetch_document(connection, OWNER, sha256) == CONTENT
    finally:
        restored.close()
