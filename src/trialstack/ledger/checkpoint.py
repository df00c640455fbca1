"""Signed checkpoints: `(study_id, study_seq, hash)` of a chain head, signed with the site's Ed25519 key.

Anyone holding the public key can check, without the database, that a copy of a study's events is exactly what
this site recorded up to that position: recompute the chain, compare the head, verify the signature.

The key is read from the PEM file named by TRIALSTACK_SIGNING_KEY, or generated once into a keys directory beside
the SQLite file (`.trialstack/keys/` next to it; `./.trialstack/keys/` for PostgreSQL) and reused from then on.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import make_url

from trialstack.ledger.errors import LedgerError

SIGNING_KEY_ENV = "TRIALSTACK_SIGNING_KEY"
KEY_FILE = "site-ed25519.pem"
CHECKPOINT_FORMAT = "trialstack-checkpoint/1"


class CheckpointInvalid(LedgerError):
    code = "checkpoint-invalid"


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's fingerprint: SHA-256 of its 32 raw bytes, in hex (publish it so auditors can pin it)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class SiteKey:
    private_key: Ed25519PrivateKey
    path: Path | None = None

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)


def key_directory(database_url: str) -> Path:
    """Where a generated key lives: beside the SQLite file, else under the working directory."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(str(url.database)).resolve().parent / ".trialstack" / "keys"
    return Path.cwd() / ".trialstack" / "keys"


def load_site_key(path: Path) -> SiteKey:
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise LedgerError(f"cannot read the signing key {path}: {error}") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise LedgerError(f"the signing key {path} is not an Ed25519 private key")
    return SiteKey(loaded, path)


def _create_key_file(path: Path) -> None:
    """Write a new key atomically: a half-written key is never visible, and a concurrent creator's key wins."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, pem)
        os.fsync(descriptor)
        os.close(descriptor)
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        Path(temporary).unlink(missing_ok=True)


def site_key(database_url: str) -> SiteKey:
    """The site's signing key: TRIALSTACK_SIGNING_KEY, or the one generated for this database's directory."""
    configured = os.environ.get(SIGNING_KEY_ENV)
    if configured:
        return load_site_key(Path(configured))
    path = key_directory(database_url) / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    return load_site_key(path)


@dataclass(frozen=True)
class Checkpoint:
    """The signed statement: this study's chain reached `hash` at `study_seq`; `manifest_sha256` binds the
    package it travels in."""

    study_id: str
    study_seq: int
    hash: str
    signed_at: str
    key_id: str
    manifest_sha256: str | None = None
    format: str = CHECKPOINT_FORMAT

    def to_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, no whitespace): the exact bytes that are signed."""
        return orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        try:
            fields: Any = orjson.loads(data)
            checkpoint = cls(**fields)
        except (orjson.JSONDecodeError, TypeError) as error:
            raise CheckpointInvalid(f"checkpoint is not a {CHECKPOINT_FORMAT} statement: {error}") from None
        texts = (checkpoint.study_id, checkpoint.hash, checkpoint.signed_at, checkpoint.key_id, checkpoint.format)
        if not all(isinstance(t, str) for t in texts) or type(checkpoint.study_seq) is not int:
            raise CheckpointInvalid("checkpoint fields have the wrong types")
        if checkpoint.format != CHECKPOINT_FORMAT or checkpoint.to_bytes() != data:
            raise CheckpointInvalid(f"checkpoint is not in canonical {CHECKPOINT_FORMAT} form")
        return checkpoint


def sign_checkpoint(key: SiteKey, checkpoint: Checkpoint) -> str:
    """The Ed25519 signature of the checkpoint's bytes, base64."""
    return base64.b64encode(key.sign(checkpoint.to_bytes())).decode("ascii")


def public_key_from_pem(pem: bytes) -> Ed25519PublicKey:
    try:
        loaded = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        raise CheckpointInvalid(f"the public key is not readable PEM: {error}") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise CheckpointInvalid("the public key is not an Ed25519 key")
    return loaded


def verify_checkpoint(public_pem: bytes, data: bytes, signature_b64: str) -> Checkpoint:
    """The checkpoint in `data` if `signature_b64` is its signature under the key, else CheckpointInvalid."""
    public_key = public_key_from_pem(public_pem)
    try:
        signature = base64.b64decode(signature_b64.strip(), validate=True)
        public_key.verify(signature, data)
    except (ValueError, InvalidSignature):
        raise CheckpointInvalid("the checkpoint signature does not verify with the enclosed public key") from None
    checkpoint = Checkpoint.from_bytes(data)
    if checkpoint.key_id != key_id(public_key):
        raise CheckpointInvalid(
            f"the checkpoint names key {checkpoint.key_id}, not the enclosed key {key_id(public_key)}"
        )
    return checkpoint
