"""Commands of the identity context. Secrets travel in commands (to be checked and hashed), never into events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from trialstack.identity.policy import Role


@dataclass(frozen=True)
class RegisterUser:
    username: str
    display_name: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ChangePassword:
    username: str
    password: str = field(repr=False)
    reset: bool = False


@dataclass(frozen=True)
class GrantRole:
    """Give `role` in `study_id` at `sites` (empty: every site, refused for site-staff roles)."""

    username: str
    study_id: str
    role: Role
    sites: frozenset[str] = frozenset()
    reason: str | None = None


@dataclass(frozen=True)
class RevokeRole:
    """Withdraw `role` at `sites`, or entirely when `sites` is empty."""

    username: str
    study_id: str
    role: Role
    sites: frozenset[str] = frozenset()
    reason: str | None = None


@dataclass(frozen=True)
class DisableUser:
    username: str
    reason: str | None = None


@dataclass(frozen=True)
class EnableUser:
    username: str
    reason: str | None = None


@dataclass(frozen=True)
class UnlockUser:
    username: str
    reason: str | None = None


@dataclass(frozen=True)
class SetTotp:
    username: str
    enabled: bool


@dataclass(frozen=True)
class IssueApiToken:
    """Issue a token; `token_id` and `token_sha256` come from the handler (randomness is an input)."""

    username: str
    token_id: str
    token_sha256: str
    expires_at: datetime | None = None
    study_id: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class RevokeApiToken:
    username: str
    token_id: str
    reason: str | None = None


class Purpose(StrEnum):
    """Why credentials are presented: to open a session, or to sign a record (Part 11 §11.200)."""

    LOGIN = "login"
    SIGNATURE = "signature"


class Failure(StrEnum):
    PASSWORD = "password"
    TOTP = "totp"


@dataclass(frozen=True)
class RecordAuthentication:
    """The outcome of checking presented credentials (the check itself is done by the handler with Argon2/TOTP):
    `failure` None means they were right. `session_id` names the session a successful login opens."""

    username: str
    purpose: Purpose
    failure: Failure | None
    now: datetime
    session_id: str | None = None
    method: str = "password"


@dataclass(frozen=True)
class OpenParticipantAccount:
    """Open the account of a participant who activated an invitation (the consent context checked the code)."""

    username: str
    password: str = field(repr=False)
    study_id: str
    site_id: str
    subject_id: str
