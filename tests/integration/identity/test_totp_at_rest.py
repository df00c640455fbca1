"""TOTP secrets are encrypted in the personal-data vault; the credential table holds only a reference."""

from __future__ import annotations

import pyotp
from sqlalchemy import select

from tests.integration.identity.support import ADMIN, PASSWORD, add_user
from trialstack.bootstrap import Platform
from trialstack.identity import credentials, handlers
from trialstack.identity.authentication import IDENTITY_SYSTEM, login
from trialstack.identity.credentials import credential
from trialstack.ledger.vault import vault_value


def _stored(platform: Platform, username: str) -> str | None:
    with platform.engine.connect() as connection:
        value = connection.execute(select(credential.c.totp_secret).where(credential.c.username == username))
        return value.scalar()


def test_a_totp_secret_is_kept_encrypted_and_still_checks_codes(platform: Platform) -> None:
    add_user(platform, "mona")
    with platform.unit_of_work(ADMIN) as uow:
        uri = handlers.set_totp(uow, "mona", True)
        uow.commit()
    assert uri is not None
    secret = pyotp.parse_uri(uri).secret
    stored = _stored(platform, "mona")
    assert stored is not None and secret not in stored
    with platform.engine.connect() as connection:
        blobs = connection.execute(select(vault_value.c.sealed)).scalars().all()
    assert blobs and all(secret.encode() not in bytes(blob) for blob in blobs)
    code = pyotp.TOTP(secret).at(platform.clock.now())
    with platform.unit_of_work(IDENTITY_SYSTEM) as uow:
        assert login(uow, "mona", PASSWORD, code).method == "password+totp"
        uow.commit()


def test_a_secret_stored_in_clear_before_the_vault_is_sealed_on_first_use(platform: Platform) -> None:
    add_user(platform, "mona")
    with platform.unit_of_work(ADMIN) as uow:
        handlers.set_totp(uow, "mona", True)
        clear = pyotp.random_base32()
        uow.connection.execute(credential.update().where(credential.c.username == "mona").values(totp_secret=clear))
        uow.commit()
    with platform.engine.begin() as connection:
        assert credentials.totp_secret(connection, platform.vault, "mona", "2026-01-05T09:00:00.000000Z")[0] == clear
    stored = _stored(platform, "mona")
    assert stored is not None and stored != clear
    with platform.engine.connect() as connection:
        assert credentials.totp_secret(connection, platform.vault, "mona", "2026-01-05T09:00:00.000000Z")[0] == clear
