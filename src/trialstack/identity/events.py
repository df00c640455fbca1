"""Events of the identity context: accounts, credentials (facts only, never secrets), access grants, sign-ins.

Account events live in the `_platform` chain, one `user` stream per username; grants live in the chain of the
study they open, one `access` stream per study and user, so a study's audit package shows who had access.
Payloads never carry a password, a password hash, a TOTP secret or a raw API token (docs/identity.md).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from trialstack.ledger.registry import event_type


class IdentityEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str


@event_type("identity")
class UserRegistered(IdentityEvent):
    """An account exists; `display_name` is the printed name shown with the user's electronic signatures."""

    display_name: str


@event_type("identity")
class PasswordChanged(IdentityEvent):
    """The password was set anew (`reset` when an administrator set it); every open session ends."""

    reset: bool = False


@event_type("identity")
class TotpEnabled(IdentityEvent):
    """Sign-in now needs a one-time code as second factor (the shared secret stays in the credential store)."""


@event_type("identity")
class TotpDisabled(IdentityEvent):
    pass


@event_type("identity")
class UserDisabled(IdentityEvent):
    """The account may no longer sign in; sessions and API tokens stop working at once."""


@event_type("identity")
class UserEnabled(IdentityEvent):
    pass


@event_type("identity")
class UserLoggedIn(IdentityEvent):
    """A session began; `method` is `password` or `password+totp`."""

    session_id: str
    method: str


@event_type("identity")
class UserLoggedOut(IdentityEvent):
    session_id: str


@event_type("identity")
class LoginFailed(IdentityEvent):
    """A sign-in attempt on an existing account failed (`reason`: `password` or `totp`); unknown usernames are
    not recorded (attacker-chosen text has no place in the ledger)."""

    reason: str
    consecutive_failures: int


@event_type("identity")
class SignatureFailed(IdentityEvent):
    """Re-authentication for an electronic signature failed: a Part 11 §11.300(d) attempt at unauthorized use."""

    reason: str
    consecutive_failures: int


@event_type("identity")
class SignatureAuthenticated(IdentityEvent):
    """The signer re-entered their credentials for a signature (the signature event itself belongs to capture)."""


@event_type("identity")
class UserLockedOut(IdentityEvent):
    """Too many consecutive failures: authentication is refused until `locked_until` or an administrator's unlock."""

    locked_until: str
    consecutive_failures: int


@event_type("identity")
class UserUnlocked(IdentityEvent):
    pass


@event_type("identity")
class ApiTokenIssued(IdentityEvent):
    """A bearer token for an integration; only its SHA-256 is kept (a 256-bit random secret cannot be guessed back
    from it). `study_id` narrows the token to the user's grants in one study."""

    token_id: str
    token_sha256: str
    expires_at: str | None = None
    study_id: str | None = None
    label: str | None = None


@event_type("identity")
class ApiTokenRevoked(IdentityEvent):
    token_id: str


@event_type("identity")
class RoleGranted(IdentityEvent):
    """A role in the study at `sites` (`["*"]`: every site); added to what the user already holds."""

    study_id: str
    role: str
    sites: list[str]
    display_name: str


@event_type("identity")
class RoleRevoked(IdentityEvent):
    """The role is withdrawn at `sites`, or entirely when `sites` is None."""

    study_id: str
    role: str
    sites: list[str] | None = None


@event_type("identity")
class ParticipantAccountOpened(IdentityEvent):
    """A participant activated their invitation: an account that belongs to one subject and holds no staff role.

    `display_name` is a pseudonym ("Participant 0101-003"); the participant's own name never enters the ledger.
    """

    display_name: str
    study_id: str
    site_id: str
    subject_id: str


ACCOUNT_EVENTS: tuple[type[IdentityEvent], ...] = (
    UserRegistered,
    ParticipantAccountOpened,
    PasswordChanged,
    TotpEnabled,
    TotpDisabled,
    UserDisabled,
    UserEnabled,
    UserLoggedIn,
    UserLoggedOut,
    LoginFailed,
    SignatureFailed,
    SignatureAuthenticated,
    UserLockedOut,
    UserUnlocked,
    ApiTokenIssued,
    ApiTokenRevoked,
)
ACCESS_EVENTS: tuple[type[IdentityEvent], ...] = (RoleGranted, RoleRevoked)
