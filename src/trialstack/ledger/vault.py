"""The personal-data vault (DESIGN.md §2): personal values live here, encrypted per owner, never in the ledger.

Each owner (a subject, a user account) has its own random data key, wrapped (RFC 3394) by the master key, which
lives outside the database (a key file or an environment variable: `VaultKeySource`). A value is sealed with
AES-256-GCM under the owner's key and gets a random reference; the event that records it carries the reference
and a keyed hash (HMAC-SHA-256 under a key derived from the owner's key), so the audit trail shows that a value
changed without holding it. Erasure destroys the owner's wrapped key and ciphertexts: the values, and the keyed
hashes that could confirm a guess, become unrecoverable, while the hash chain, which covers only references and
hashes, still verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from sqlalchemy import Column, Connection, Engine, Integer, LargeBinary, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from trialstack.errors import DomainRuleViolation, TrialStackError

KEY_ENV = "TRIALSTACK_VAULT_KEY"
KEY_FILE_ENV = "TRIALSTACK_VAULT_KEY_FILE"
_CHECK_LABEL = b"trialstack vault master key check"
_MAC_LABEL = b"trialstack vault keyed hash"
_NONCE_BYTES = 12

vault_metadata = MetaData()

vault_master = Table(
    "vault_master",
    vault_metadata,
    Column("id", Integer, primary_key=True),
    Column("key_check", String(64), nullable=False),
    Column("created_at", String(27), nullable=False),
)

vault_key = Table(
    "vault_key",
    vault_metadata,
    Column("owner", String(300), primary_key=True),
    Column("wrapped_key", LargeBinary),
    Column("created_at", String(27), nullable=False),
    Column("erased_at", String(27)),
)

vault_value = Table(
    "vault_value",
    vault_metadata,
    Column("ref", String(36), primary_key=True),
    Column("owner", String(300), nullable=False, index=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", String(27), nullable=False),
)

vault_document = Table(
    "vault_document",
    vault_metadata,
    Column("owner", String(300), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", String(27), nullable=False),
)


class VaultKeyError(TrialStackError):
    """The master key is missing, malformed, or not the key this database's vault was created with."""

    code = "vault-key"


class PersonalDataErased(DomainRuleViolation):
    """The owner's personal data was erased: nothing can be sealed for them any more."""

    code = "personal-data-erased"


@dataclass(frozen=True)
class Sealed:
    """What an event carries instead of a personal value: where it is, and a keyed hash of it."""

    ref: str
    digest: str


@dataclass(frozen=True)
class VaultKeySource:
    """Where the master key comes from: a literal key (environment), a key file, or nothing configured.

    A key file that does not exist yet is created (mode 0600) only when the database's vault is new; once the
    vault exists, a missing or different key is an error, never a new vault.
    """

    key: str | None = None
    key_file: Path | None = None
    ephemeral: bool = False

    @classmethod
    def from_settings(cls, database_url: str, key: str | None, key_file: str | None) -> VaultKeySource:
        """TRIALSTACK_VAULT_KEY wins, then TRIALSTACK_VAULT_KEY_FILE, then `<sqlite file>.vault-key`.

        PostgreSQL has no default: production keeps the key apart from the database and says where it is.
        """
        if key:
            return cls(key=key)
        if key_file:
            return cls(key_file=Path(key_file))
        if database_url.startswith("sqlite"):
            path = database_url.split("///", 1)[1] if "///" in database_url else ""
            if path in ("", ":memory:"):
                return cls(ephemeral=True)
            return cls(key_file=Path(f"{path}.vault-key"))
        return cls()

    def describe(self) -> str:
        if self.key is not None:
            return f"${KEY_ENV}"
        if self.key_file is not None:
            return str(self.key_file)
        return "an in-memory key" if self.ephemeral else "no key"


def _parse_key(text: str, where: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise VaultKeyError(f"the vault master key in {where} is not 32 bytes of URL-safe base64")
    return raw


def new_master_key() -> str:
    """A fresh master key in the text form the key file and TRIALSTACK_VAULT_KEY hold."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _key_check(master: bytes) -> str:
    return hmac.new(master, _CHECK_LABEL, hashlib.sha256).hexdigest()


def _insert_ignoring_conflict(connection: Connection, table: Table, values: dict[str, object], key: str) -> None:
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(dialect_insert(table).values(values).on_conflict_do_nothing(index_elements=[key]))


def _document_aad(sha256: str, owner: str) -> bytes:
    return f"document|{sha256}|{owner}".encode()


def subject_owner(study_id: str, subject_id: str) -> str:
    """The vault owner of a subject's personal data (every context seals a subject's data under this one key)."""
    return f"subject:{study_id}/{subject_id}"


class Vault:
    """Seal, reveal and erase personal values inside the caller's transaction (the unit of work's connection)."""

    def __init__(self, source: VaultKeySource) -> None:
        self._source = source
        self._master: bytes | None = None
        self._ephemeral: bytes | None = None

    @property
    def source(self) -> VaultKeySource:
        return self._source

    def check(self, engine: Engine, at: str) -> None:
        """Open the vault now (start-up): one clear VaultKeyError when the key is missing or wrong."""
        with engine.begin() as connection:
            self._open(connection, at)

    def _configured_key(self, initialising: bool) -> bytes | None:
        source = self._source
        if source.key is not None:
            return _parse_key(source.key, f"${KEY_ENV}")
        if source.key_file is not None:
            if source.key_file.exists():
                return _parse_key(source.key_file.read_text(encoding="ascii", errors="replace"), str(source.key_file))
            if not initialising:
                return None
            text = new_master_key()
            descriptor = os.open(source.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(text + "\n")
            return _parse_key(text, str(source.key_file))
        if source.ephemeral:
            if self._ephemeral is None:
                self._ephemeral = secrets.token_bytes(32)
            return self._ephemeral
        return None

    def _open(self, connection: Connection, at: str | None) -> bytes:
        """The checked master key; a vault that does not exist yet is created only by a write (`at` given)."""
        if self._master is not None:
            return self._master
        stored = connection.execute(select(vault_master.c.key_check).where(vault_master.c.id == 1)).scalar()
        if stored is None and at is None:
            raise VaultKeyError("this database has no personal-data vault yet, so it holds no personal value")
        master = self._configured_key(initialising=stored is None)
        if master is None:
            raise VaultKeyError(
                f"the vault master key is missing (looked in {self._source.describe()}): set {KEY_FILE_ENV} to the "
                f"key file or {KEY_ENV} to the key"
            )
        if stored is None and at is not None:
            values = {"id": 1, "key_check": _key_check(master), "created_at": at}
            _insert_ignoring_conflict(connection, vault_master, values, "id")
            stored = connection.execute(select(vault_master.c.key_check).where(vault_master.c.id == 1)).scalar_one()
        if not hmac.compare_digest(str(stored), _key_check(master)):
            raise VaultKeyError(
                f"the vault master key from {self._source.describe()} is not the key this database's vault was "
                "created with"
            )
        self._master = master
        return master

    def _data_key(self, connection: Connection, owner: str, at: str | None, create: bool) -> bytes | None:
        master = self._open(connection, at)
        row = connection.execute(
            select(vault_key.c.wrapped_key, vault_key.c.erased_at).where(vault_key.c.owner == owner)
        ).first()
        if row is not None:
            if row.erased_at is not None:
                return None
            try:
                return aes_key_unwrap(master, bytes(row.wrapped_key))
            except InvalidUnwrap:
                raise VaultKeyError(f"the data key of {owner} does not unwrap with the master key") from None
        if not create or at is None:
            return None
        data_key = secrets.token_bytes(32)
        connection.execute(
            vault_key.insert().values(owner=owner, wrapped_key=aes_key_wrap(master, data_key), created_at=at)
        )
        return data_key

    @staticmethod
    def _mac(data_key: bytes, plaintext: str) -> str:
        mac_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_MAC_LABEL).derive(data_key)
        return hmac.new(mac_key, plaintext.encode("utf-8"), hashlib.sha256).hexdigest()

    def seal(self, connection: Connection, owner: str, values: Iterable[str], at: str) -> list[Sealed]:
        """Encrypt each value under the owner's key (created on first use); returns references and keyed hashes."""
        data_key = self._data_key(connection, owner, at, create=True)
        if data_key is None:
            raise PersonalDataErased(f"the personal data of {owner} was erased: no new personal data is kept")
        cipher = AESGCM(data_key)
        sealed: list[Sealed] = []
        rows = []
        for plaintext in values:
            ref = str(uuid.uuid4())
            nonce = secrets.token_bytes(_NONCE_BYTES)
            body = cipher.encrypt(nonce, plaintext.encode("utf-8"), f"{ref}|{owner}".encode())
            rows.append({"ref": ref, "owner": owner, "sealed": nonce + body, "created_at": at})
            sealed.append(Sealed(ref, self._mac(data_key, plaintext)))
        if rows:
            connection.execute(vault_value.insert(), rows)
        return sealed

    def reveal(self, connection: Connection, owner: str, refs: Iterable[str]) -> dict[str, str | None]:
        """Decrypt the owner's values by reference; an erased (or unknown) reference maps to None."""
        wanted = sorted(set(refs))
        revealed: dict[str, str | None] = dict.fromkeys(wanted)
        if not wanted:
            return revealed
        data_key = self._data_key(connection, owner, None, create=False)
        if data_key is None:
            return revealed
        cipher = AESGCM(data_key)
        rows = connection.execute(
            select(vault_value.c.ref, vault_value.c.sealed).where(
                vault_value.c.owner == owner, vault_value.c.ref.in_(wanted)
            )
        )
        for ref, blob in rows:
            data = bytes(blob)
            try:
                plain = cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], f"{ref}|{owner}".encode())
            except InvalidTag:
                raise VaultKeyError(f"vault value {ref} of {owner} fails its authentication tag") from None
            revealed[ref] = plain.decode("utf-8")
        return revealed

    def erase(self, connection: Connection, owner: str, at: str) -> int:
        """Crypto-shred the owner's personal data: destroy the data key and the ciphertexts; returns values shredded.

        Idempotent: erasing an owner twice (or one who never had personal data) destroys nothing more.
        """
        self._open(connection, at)
        shredded = connection.execute(vault_value.delete().where(vault_value.c.owner == owner)).rowcount
        connection.execute(vault_document.delete().where(vault_document.c.owner == owner))
        existing = connection.execute(select(vault_key.c.owner).where(vault_key.c.owner == owner)).first()
        if existing is None:
            connection.execute(vault_key.insert().values(owner=owner, wrapped_key=None, created_at=at, erased_at=at))
        else:
            connection.execute(
                vault_key.update()
                .where(vault_key.c.owner == owner, vault_key.c.erased_at.is_(None))
                .values(wrapped_key=None, erased_at=at)
            )
        return int(shredded or 0)

    def store_document(self, connection: Connection, owner: str, content: bytes, at: str) -> str:
        """Keep a document (e.g. a signed consent copy) encrypted under the owner's key; returns its SHA-256 (hex).

        Content-addressed: storing the same bytes again for the same owner stores nothing and returns the same hash.
        The associated data binds the ciphertext to its hash and owner, so a row moved or relabelled fails to open.
        """
        sha256 = hashlib.sha256(content).hexdigest()
        data_key = self._data_key(connection, owner, at, create=True)
        if data_key is None:
            raise PersonalDataErased(f"the personal data of {owner} was erased: no new personal data is kept")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        body = AESGCM(data_key).encrypt(nonce, content, _document_aad(sha256, owner))
        dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        connection.execute(
            dialect_insert(vault_document)
            .values(owner=owner, sha256=sha256, sealed=nonce + body, created_at=at)
            .on_conflict_do_nothing(index_elements=["owner", "sha256"])
        )
        return sha256

    def fetch_document(self, connection: Connection, owner: str, sha256: str) -> bytes | None:
        """The owner's document with this SHA-256, decrypted and checked; None when unknown or erased."""
        data_key = self._data_key(connection, owner, None, create=False)
        if data_key is None:
            return None
        blob = connection.execute(
            select(vault_document.c.sealed).where(vault_document.c.owner == owner, vault_document.c.sha256 == sha256)
        ).scalar()
        if blob is None:
            return None
        data = bytes(blob)
        try:
            content = AESGCM(data_key).decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], _document_aad(sha256, owner))
        except InvalidTag:
            raise VaultKeyError(f"vault document {sha256} of {owner} fails its authentication tag") from None
        if not hmac.compare_digest(hashlib.sha256(content).hexdigest(), sha256):
            raise VaultKeyError(f"vault document {sha256} of {owner} does not hash to its address")
        return content

    def is_erased(self, connection: Connection, owner: str) -> bool:
        erased_at = connection.execute(select(vault_key.c.erased_at).where(vault_key.c.owner == owner)).scalar()
        return erased_at is not None
