"""Credential cryptography: Argon2id passwords, TOTP codes, API tokens. Stateless helpers; storage is elsewhere.

Kept out of `model.py` because hashing draws a random salt and verifying reads the clock-free but secret state
of a credential row: decisions receive only the outcome ("the password was wrong").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_PREFIX = "tsk"
TOTP_ISSUER = "TrialStack"


class Passwords:
    """Argon2id with argon2-cffi's RFC 9106 low-memory profile (64 MiB, 3 passes) unless told otherwise."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._decoy = self.hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when the password matches; an absent hash costs the same time (no username probing)."""
        try:
            return self.hasher.verify(stored_hash or self._decoy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)


PASSWORDS = Passwords()
"""The process-wide hasher; tests swap in a cheap one (`use_passwords`)."""


def passwords() -> Passwords:
    return PASSWORDS


def use_passwords(instance: Passwords) -> Passwords:
    """Replace the process-wide hasher (tests use a fast profile); returns the previous one."""
    global PASSWORDS
    previous, PASSWORDS = PASSWORDS, instance
    return previous


@dataclass(frozen=True)
class NewToken:
    """A freshly drawn API token: `secret` is shown once to the operator and never stored."""

    token_id: str
    secret: str
    sha256: str


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_api_token() -> NewToken:
    """`tsk_<id>_<secret>`: the id names the token in listings and revocations; 256 random bits make it unguessable."""
    token_id = secrets.token_hex(6)
    secret = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
    return NewToken(token_id, secret, token_sha256(secret))


def looks_like_token(value: str) -> bool:
    return value.startswith(f"{TOKEN_PREFIX}_") and 0 < len(value) <= 200


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, username: str) -> str:
    return str(pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER))


def totp_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step a code belongs to (±1 step of drift), or None when wrong or already used (no replay)."""
    totp = pyotp.TOTP(secret)
    if not code.isdigit() or len(code) != totp.digits:
        return None
    current = int(now.timestamp()) // totp.interval
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(str(totp.generate_otp(step)), code):
            return step if last_step is None or step > last_step else None
    return None


def new_session_id() -> str:
    return secrets.token_urlsafe(18)
