"""Accounts and study access as folds of their events, and the pure decisions on them. No I/O, no clock.

The rules: the password policy, lockout after MAX_CONSECUTIVE_FAILURES failed authentications in a row (sign-in
and signature alike), disabled accounts, site-staff roles named at sites, and no user both blinded and unblinded
in one study.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from trialstack.clock import utc_timestamp
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound, TrialStackError
from trialstack.identity import commands as cmd
from trialstack.identity import events as ev
from trialstack.identity.policy import UNBLINDED_ROLES, Role

MAX_CONSECUTIVE_FAILURES = 5
LOCKOUT_PERIOD = timedelta(minutes=30)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
SITE_ROLES = frozenset({Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.UNBLINDED_PHARMACIST, Role.PARTICIPANT})
"""Roles held at named sites: a grant of one of them at every site is refused."""
EVERY_SITE = "*"


class NotAuthenticated(TrialStackError):
    """No valid credentials (HTTP 401). The message never says which part was wrong."""

    code = "not-authenticated"


class SignatureRejected(NotAuthenticated):
    """The credentials re-entered for an electronic signature were wrong: nothing was signed."""

    code = "signature-rejected"


class SecondFactorRequired(NotAuthenticated):
    """The password was right and the account needs a one-time code too; no failure is counted."""

    code = "second-factor-required"


class TooManyAttempts(TrialStackError):
    """Sign-in attempts are throttled (HTTP 429); `retry_after` is in seconds."""

    code = "too-many-attempts"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PasswordPolicyViolation(InvalidInput):
    code = "password-policy"


def _classes(password: str) -> int:
    kinds = (str.islower, str.isupper, str.isdigit)
    found = {index for ch in password for index, kind in enumerate(kinds) if kind(ch)}
    if any(not (ch.islower() or ch.isupper() or ch.isdigit()) for ch in password):
        found.add(len(kinds))
    return len(found)


def password_problems(username: str, password: str) -> list[str]:
    """What is wrong with a password, in words a user can act on (empty when it is acceptable)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"it has {len(password)} characters, expected at least {MIN_PASSWORD_LENGTH}")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"it has {len(password)} characters, expected at most {MAX_PASSWORD_LENGTH}")
    if username and username.lower() in password.lower():
        problems.append("it contains the username")
    if password and _classes(password) < 2:
        problems.append("it uses one kind of character only; mix letters, digits or symbols")
    return problems


def check_password(username: str, password: str) -> None:
    problems = password_problems(username, password)
    if problems:
        raise PasswordPolicyViolation("password refused: " + "; ".join(problems), field="password")


@dataclass(frozen=True)
class Account:
    """A user account folded from its `user` stream; `version` is the stream version it was folded to."""

    username: str
    display_name: str = ""
    exists: bool = False
    participant: bool = False
    disabled: bool = False
    totp: bool = False
    failures: int = 0
    locked_until: datetime | None = None
    tokens: Mapping[str, bool] = field(default_factory=dict)
    """token id → still active."""
    version: int = 0

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def evolve(state: Account, event: ev.IdentityEvent) -> Account:
    match event:
        case ev.UserRegistered():
            return replace(state, display_name=event.display_name, exists=True)
        case ev.ParticipantAccountOpened():
            return replace(state, display_name=event.display_name, exists=True, participant=True)
        case ev.UserDisabled():
            return replace(state, disabled=True)
        case ev.UserEnabled():
            return replace(state, disabled=False)
        case ev.TotpEnabled() | ev.TotpDisabled():
            return replace(state, totp=isinstance(event, ev.TotpEnabled))
        case ev.LoginFailed() | ev.SignatureFailed():
            return replace(state, failures=event.consecutive_failures)
        case ev.UserLockedOut():
            return replace(state, failures=0, locked_until=datetime.fromisoformat(event.locked_until))
        case ev.UserUnlocked() | ev.PasswordChanged():
            return replace(state, failures=0, locked_until=None)
        case ev.UserLoggedIn() | ev.SignatureAuthenticated():
            return replace(state, failures=0)
        case ev.ApiTokenIssued() | ev.ApiTokenRevoked():
            return replace(state, tokens={**state.tokens, event.token_id: isinstance(event, ev.ApiTokenIssued)})
    return state


def _existing(state: Account) -> Account:
    if not state.exists:
        raise NotFound(f"no user {state.username!r}", field="username")
    return state


def _new_username(state: Account, username: str) -> None:
    if not USERNAME.match(username):
        raise InvalidInput(
            f"username {username!r}: expected 3-64 lower-case letters, digits, '.', '_' or '-'", field="username"
        )
    if state.exists:
        raise DomainRuleViolation(f"user {username!r} already exists", field="username")


def decide_open_participant(state: Account, command: cmd.OpenParticipantAccount) -> list[ev.IdentityEvent]:
    """A participant's own account, bound to their subject; same username and password policy as staff."""
    _new_username(state, command.username)
    check_password(command.username, command.password)
    return [
        ev.ParticipantAccountOpened(
            username=command.username,
            display_name=f"Participant {command.subject_id}",
            study_id=command.study_id,
            site_id=command.site_id,
            subject_id=command.subject_id,
        )
    ]


def decide_register(state: Account, command: cmd.RegisterUser) -> list[ev.IdentityEvent]:
    _new_username(state, command.username)
    name = command.display_name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("the display name (printed with signatures) must have 1-200 characters", field="name")
    check_password(command.username, command.password)
    return [ev.UserRegistered(username=command.username, display_name=name)]


def decide_change_password(state: Account, command: cmd.ChangePassword) -> list[ev.IdentityEvent]:
    check_password(_existing(state).username, command.password)
    return [ev.PasswordChanged(username=state.username, reset=command.reset)]


def decide_set_totp(state: Account, command: cmd.SetTotp) -> list[ev.IdentityEvent]:
    if _existing(state).totp == command.enabled:
        return []
    return [ev.TotpEnabled(username=state.username) if command.enabled else ev.TotpDisabled(username=state.username)]


def decide_disable(state: Account, command: cmd.DisableUser) -> list[ev.IdentityEvent]:
    return [] if _existing(state).disabled else [ev.UserDisabled(username=state.username)]


def decide_enable(state: Account, command: cmd.EnableUser) -> list[ev.IdentityEvent]:
    return [ev.UserEnabled(username=state.username)] if _existing(state).disabled else []


def decide_unlock(state: Account, command: cmd.UnlockUser, now: datetime) -> list[ev.IdentityEvent]:
    if not _existing(state).locked_at(now) and state.failures == 0:
        return []
    return [ev.UserUnlocked(username=state.username)]


def decide_issue_token(state: Account, command: cmd.IssueApiToken, now: datetime) -> list[ev.IdentityEvent]:
    if _existing(state).disabled:
        raise DomainRuleViolation(f"user {state.username!r} is disabled", field="username")
    if command.token_id in state.tokens:
        raise DomainRuleViolation(f"token id {command.token_id} is already used", field="token_id")
    if command.expires_at is not None and command.expires_at <= now:
        raise InvalidInput("a token must expire in the future", field="expires")
    return [
        ev.ApiTokenIssued(
            username=state.username,
            token_id=command.token_id,
            token_sha256=command.token_sha256,
            expires_at=utc_timestamp(command.expires_at) if command.expires_at is not None else None,
            study_id=command.study_id,
            label=command.label,
        )
    ]


def decide_revoke_token(state: Account, command: cmd.RevokeApiToken) -> list[ev.IdentityEvent]:
    active = _existing(state).tokens.get(command.token_id)
    if active is None:
        raise NotFound(f"user {state.username!r} has no token {command.token_id}", field="token_id")
    return [ev.ApiTokenRevoked(username=state.username, token_id=command.token_id)] if active else []


def refusal(state: Account, now: datetime) -> str | None:
    """Why credentials are not even checked: the account is unknown, disabled or locked out."""
    if not state.exists:
        return "unknown"
    if state.disabled:
        return "disabled"
    if state.locked_at(now):
        return "locked"
    return None


def decide_authentication(state: Account, command: cmd.RecordAuthentication) -> list[ev.IdentityEvent]:
    """Record a success (resets the count of failures) or a failure (locks the account at the limit)."""
    name = state.username
    if refusal(state, command.now) is not None:
        raise DomainRuleViolation(f"user {name!r} cannot authenticate now", field="username")
    if command.failure is None:
        if command.purpose is cmd.Purpose.SIGNATURE:
            return [ev.SignatureAuthenticated(username=name)]
        if command.session_id is None:
            raise InvalidInput("a login opens a session and needs its id", field="session_id")
        return [ev.UserLoggedIn(username=name, session_id=command.session_id, method=command.method)]
    failures = state.failures + 1
    failed: ev.IdentityEvent
    if command.purpose is cmd.Purpose.SIGNATURE:
        failed = ev.SignatureFailed(username=name, reason=command.failure.value, consecutive_failures=failures)
    else:
        failed = ev.LoginFailed(username=name, reason=command.failure.value, consecutive_failures=failures)
    if failures < MAX_CONSECUTIVE_FAILURES:
        return [failed]
    until = utc_timestamp(command.now + LOCKOUT_PERIOD)
    return [failed, ev.UserLockedOut(username=name, locked_until=until, consecutive_failures=failures)]


@dataclass(frozen=True)
class Access:
    """What one user holds in one study: role → sites (`{"*"}` for every site)."""

    study_id: str
    username: str
    roles: Mapping[Role, frozenset[str]] = field(default_factory=dict)
    version: int = 0


def evolve_access(state: Access, event: ev.IdentityEvent) -> Access:
    roles = dict(state.roles)
    if isinstance(event, ev.RoleGranted):
        role = Role(event.role)
        sites = frozenset(event.sites)
        roles[role] = sites if EVERY_SITE in sites else roles.get(role, frozenset()) | sites
    elif isinstance(event, ev.RoleRevoked):
        role = Role(event.role)
        left = frozenset() if event.sites is None else roles.get(role, frozenset()) - frozenset(event.sites)
        if left:
            roles[role] = left
        else:
            roles.pop(role, None)
    return replace(state, roles=roles)


def decide_grant(
    account: Account, access: Access, command: cmd.GrantRole, known_sites: frozenset[str] | None
) -> list[ev.IdentityEvent]:
    """Grant a role at sites; `known_sites` are the sites of the StudyVersion in force (None: not loaded yet)."""
    if _existing(account).disabled:
        raise DomainRuleViolation(f"user {account.username!r} is disabled", field="username")
    if account.participant:
        raise DomainRuleViolation(
            f"{account.username!r} is a participant account: it belongs to one subject and holds no staff role",
            field="username",
        )
    role = command.role
    if role is Role.PARTICIPANT:
        raise InvalidInput(
            "participant accounts are opened by the participant from a site's invitation, not granted", field="role"
        )
    if not command.sites and role in SITE_ROLES:
        raise InvalidInput(f"a {role.value} works at named sites: give at least one --site", field="site")
    unknown = sorted(command.sites - known_sites) if known_sites is not None else []
    if unknown:
        raise InvalidInput(
            f"site {', '.join(unknown)} is not a site of study {command.study_id} "
            f"(sites: {', '.join(sorted(known_sites or ())) or 'none'})",
            field="site",
        )
    others = [held for held in access.roles if held != role]
    if others and (role in UNBLINDED_ROLES) != all(held in UNBLINDED_ROLES for held in others):
        raise DomainRuleViolation(
            f"{account.username} already holds {', '.join(r.value for r in others)} in {command.study_id}: "
            "one user is either blinded or unblinded in a study, never both",
            field="role",
        )
    held = access.roles.get(role, frozenset())
    wanted = frozenset(command.sites) or frozenset({EVERY_SITE})
    if EVERY_SITE in held or wanted <= held:
        return []
    return [
        ev.RoleGranted(
            username=account.username,
            study_id=command.study_id,
            role=role.value,
            sites=sorted(wanted),
            display_name=account.display_name,
        )
    ]


def decide_revoke(access: Access, command: cmd.RevokeRole) -> list[ev.IdentityEvent]:
    held = access.roles.get(command.role)
    if held is None:
        raise NotFound(f"{access.username} holds no {command.role.value} role in {access.study_id}", field="role")
    if command.sites and EVERY_SITE in held:
        raise DomainRuleViolation(
            f"the {command.role.value} role covers every site; revoke it whole and grant the sites to keep",
            field="site",
        )
    missing = sorted(command.sites - held)
    if missing:
        raise NotFound(f"{access.username} is not a {command.role.value} at {', '.join(missing)}", field="site")
    sites = sorted(command.sites) if command.sites and command.sites != held else None
    return [ev.RoleRevoked(username=access.username, study_id=access.study_id, role=command.role.value, sites=sites)]
