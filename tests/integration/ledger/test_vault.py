"""The personal-data vault on SQLite and PostgreSQL: sealing, revealing, erasure and the master key's checks."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from trialstack.bootstrap import Platform, bootstrap
from trialstack.ledger.vault import (
    KEY_ENV,
    PersonalDataErased,
    Vault,
    VaultKeyError,
    VaultKeySource,
    new_master_key,
    vault_key,
    vault_master,
    vault_value,
)
from trialstack.settings import Settings

AT = "2026-01-05T09:00:00.000000Z"


def test_a_sealed_value_is_revealed_only_for_its_owner_and_its_keyed_hash_is_per_owner(platform: Platform) -> None:
    vault = platform.vault
    with platform.engine.begin() as connection:
        first, again = vault.seal(connection, "subject:S/001", ["1968-04-12", "1968-04-12"], AT)
        (other,) = vault.seal(connection, "subject:S/002", ["1968-04-12"], AT)
        stored = connection.execute(select(vault_value.c.sealed)).scalars().all()
    assert first.ref != again.ref and first.digest == again.digest, "same owner, same value: same keyed hash"
    assert other.digest != first.digest, "the keyed hash is under each owner's own key"
    assert all(b"1968-04-12" not in bytes(blob) for blob in stored)
    with platform.engine.connect() as connection:
        assert vault.reveal(connection, "subject:S/001", [first.ref, again.ref]) == {
            first.ref: "1968-04-12",
            again.ref: "1968-04-12",
        }
        assert vault.reveal(connection, "subject:S/002", [first.ref]) == {first.ref: None}


def test_a_ciphertext_moved_to_another_owner_fails_its_authentication(platform: Platform) -> None:
    vault = platform.vault
    with platform.engine.begin() as connection:
        (mine,) = vault.seal(connection, "subject:S/001", ["Jane"], AT)
        (theirs,) = vault.seal(connection, "subject:S/001", ["John"], AT)
        blob = connection.execute(select(vault_value.c.sealed).where(vault_value.c.ref == theirs.ref)).scalar_one()
        connection.execute(vault_value.update().where(vault_value.c.ref == mine.ref).values(sealed=blob))
    with platform.engine.connect() as connection, pytest.raises(VaultKeyError, match="authentication tag"):
        vault.reveal(connection, "subject:S/001", [mine.ref])


def test_erasure_destroys_the_key_and_values_and_refuses_new_personal_data(platform: Platform) -> None:
    vault = platform.vault
    with platform.engine.begin() as connection:
        (kept,) = vault.seal(connection, "subject:S/001", ["1968-04-12"], AT)
        (other,) = vault.seal(connection, "subject:S/002", ["1971-09-23"], AT)
        assert vault.erase(connection, "subject:S/001", AT) == 1
        assert vault.erase(connection, "subject:S/001", AT) == 0
    with platform.engine.connect() as connection:
        assert vault.reveal(connection, "subject:S/001", [kept.ref]) == {kept.ref: None}
        assert vault.reveal(connection, "subject:S/002", [other.ref]) == {other.ref: "1971-09-23"}
        assert vault.is_erased(connection, "subject:S/001") and not vault.is_erased(connection, "subject:S/002")
        wrapped = connection.execute(
            select(vault_key.c.wrapped_key).where(vault_key.c.owner == "subject:S/001")
        ).scalar_one()
        assert wrapped is None
    with platform.engine.begin() as connection, pytest.raises(PersonalDataErased):
        vault.seal(connection, "subject:S/001", ["1968-04-12"], AT)


def test_a_wrong_master_key_opens_nothing_and_writes_nothing(platform: Platform) -> None:
    with platform.engine.begin() as connection:
        platform.vault.seal(connection, "subject:S/001", ["x"], AT)
    wrong = Vault(VaultKeySource(key=new_master_key()))
    with pytest.raises(VaultKeyError, match="not the key this database's vault was created with"):
        wrong.check(platform.engine, AT)
    with platform.engine.begin() as connection, pytest.raises(VaultKeyError):
        wrong.seal(connection, "subject:S/002", ["y"], AT)
    with platform.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(vault_value)).scalar_one() == 1
        assert connection.execute(select(func.count()).select_from(vault_key)).scalar_one() == 1


def test_a_malformed_master_key_is_one_clear_error(platform: Platform) -> None:
    with pytest.raises(VaultKeyError, match="is not 32 bytes of URL-safe base64"):
        Vault(VaultKeySource(key="not-a-key")).check(platform.engine, AT)


def test_postgresql_has_no_default_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    source = VaultKeySource.from_settings("postgresql://postgres@127.0.0.1/x", None, None)
    assert source == VaultKeySource()
    assert "no key" in source.describe()


def test_sqlite_keeps_its_key_file_beside_the_database_and_refuses_to_start_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    platform = bootstrap(Settings(database_url=url), migrate=True)
    try:
        platform.check_vault()
        key_file = tmp_path / "study.db.vault-key"
        assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
        with platform.engine.begin() as connection:
            (sealed,) = platform.vault.seal(connection, "user:ana", ["JBSWY3DPEHPK3PXP"], AT)
    finally:
        platform.close()
    key_file.rename(tmp_path / "elsewhere.key")
    again = bootstrap(Settings(database_url=url))
    try:
        with pytest.raises(VaultKeyError, match="the vault master key is missing"):
            again.check_vault()
        monkeypatch.setenv("TRIALSTACK_VAULT_KEY_FILE", str(tmp_path / "elsewhere.key"))
        moved = bootstrap(Settings(database_url=url))
        with moved.engine.connect() as connection:
            assert moved.vault.reveal(connection, "user:ana", [sealed.ref]) == {sealed.ref: "JBSWY3DPEHPK3PXP"}
        moved.close()
    finally:
        again.close()


def test_the_vault_is_created_once_with_the_key_check(platform: Platform) -> None:
    platform.check_vault()
    platform.check_vault()
    with platform.engine.connect() as connection:
        rows = connection.execute(select(vault_master)).all()
    assert len(rows) == 1 and len(rows[0].key_check) == 64
