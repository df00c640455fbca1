"""Authentication use cases: sign in, sign out, re-authenticate for an electronic signature, resolve a bearer token
or a session to a Principal.

A failed attempt must stay on record although the call fails, so `login` and `reauthenticate_for_signature`
commit the unit of work before raising; they refuse to run in a unit that already holds other events, which
would be committed with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

from trialstack.clock import utc_timestamp
from trialstack.errors import TrialStackError
from trialstack.identity import credentials
from trialstack.identity import model as rules
from trialstack.identity.commands import Failure, Purpose, RecordAuthentication
from trialstack.identity.crypto import looks_like_token, new_session_id, passwords, token_sha256, totp_step
from trialstack.identity.events import UserLoggedOut
from trialstack.identity.handlers import append_account, load_account
from trialstack.identity.policy import Forbidden, Principal
from trialstack.identity.readmodel import find_session, find_token, load_principal
from trialstack.identity.sessions import (
    DEFAULT_IDLE_TIMEOUT,
    forget_stale_activity,
    idle_expired,
    last_activity,
    needs_touch,
    record_activity,
)
from trialstack.ledger.database import WRITE_OPTION
from trialstack.ledger.envelope import Actor
from trialstack.ledger.uow import UnitOfWork

IDENTITY_SYSTEM = Actor(id="system:identity", role="system")
"""Who records a failed sign-in: the claimant is not authenticated, so the event is not attributed to them."""
INVALID_CREDENTIALS = "invalid username, password or one-time code (or the account is locked or disabled)"


def user_actor(username: str, role: str = "user") -> Actor:
    return Actor(id=f"user:{username}", role=role)


class SessionExpired(rules.NotAuthenticated):
    """The session went unused for longer than the idle timeout: the user signs in again."""

    code = "session-expired"


@dataclass(frozen=True)
class LoginResult:
    principal: Principal
    session_id: str
    method: str


def _fresh(uow: UnitOfWork) -> None:
    if uow.new_events:
        raise TrialStackError("authenticate first: this unit of work already holds events it would commit")


def _check(uow: UnitOfWork, account: rules.Account, password: str, totp: str | None) -> tuple[Failure | None, str]:
    """Verify the password (and one-time code); returns the failure, if any, and the method used."""
    connection = uow.connection
    stored = credentials.password_hash(connection, account.username)
    if not passwords().verify(stored, password):
        return Failure.PASSWORD, "password"
    if stored is not None and passwords().needs_rehash(stored):
        rehashed = passwords().hash(password)
        credentials.set_password_hash(connection, account.username, rehashed, utc_timestamp(uow.clock.now()))
    if not account.totp:
        return None, "password"
    secret, last_step = credentials.totp_secret(connection, uow.vault, account.username, utc_timestamp(uow.clock.now()))
    if totp is None or secret is None:
        raise rules.SecondFactorRequired("this account needs a one-time code too", field="totp")
    step = totp_step(secret, totp, uow.clock.now(), last_step)
    if step is None:
        return Failure.TOTP, "password+totp"
    credentials.record_totp_step(connection, account.username, step)
    return None, "password+totp"


def _authenticate(
    uow: UnitOfWork, username: str, password: str, totp: str | None, purpose: Purpose, actor: Actor | None
) -> tuple[str | None, str]:
    _fresh(uow)
    account = load_account(uow, username)
    now = uow.clock.now()
    rejected = rules.SignatureRejected if purpose is Purpose.SIGNATURE else rules.NotAuthenticated
    if rules.refusal(account, now) is not None:
        passwords().verify(None, password)
        raise rejected(INVALID_CREDENTIALS)
    failure, method = _check(uow, account, password, totp)
    session_id = new_session_id() if failure is None and purpose is Purpose.LOGIN else None
    decided = rules.decide_authentication(
        account, RecordAuthentication(username, purpose, failure, now, session_id, method)
    )
    who = actor or (user_actor(username) if failure is None else IDENTITY_SYSTEM)
    append_account(uow, account, decided, actor=who)
    if failure is not None:
        uow.commit()
        raise rejected(INVALID_CREDENTIALS)
    return session_id, method


def login(uow: UnitOfWork, username: str, password: str, totp: str | None = None) -> LoginResult:
    """Open a session (UserLoggedIn, and its idle clock started); the caller commits. A failure appends LoginFailed
    (and UserLockedOut at the limit), commits, and raises NotAuthenticated."""
    session_id, method = _authenticate(uow, username, password, totp, Purpose.LOGIN, None)
    principal = load_principal(uow.connection, username)
    if session_id is None or principal is None:
        raise rules.NotAuthenticated(INVALID_CREDENTIALS)
    now = uow.clock.now()
    forget_stale_activity(uow.connection, now)
    record_activity(uow.connection, session_id, now)
    return LoginResult(principal, session_id, method)


def reauthenticate_for_signature(uow: UnitOfWork, username: str, password: str, totp: str | None = None) -> Principal:
    """Part 11 §11.200: the signer re-enters their credentials at signing. Call it first in the unit of work.

    Success appends SignatureAuthenticated and returns the signer (the caller appends its signature event and
    commits). A wrong password or code appends SignatureFailed (UserLockedOut at the limit), commits, and raises
    SignatureRejected (HTTP 401). The unit's actor must be the signer: nobody signs for someone else.
    """
    if uow.actor.id.startswith("user:") and uow.actor.id != f"user:{username}":
        raise Forbidden(f"{uow.actor.id} cannot sign as {username}: a signature belongs to one individual")
    _authenticate(uow, username, password, totp, Purpose.SIGNATURE, uow.actor)
    principal = load_principal(uow.connection, username)
    if principal is None:
        raise rules.SignatureRejected(INVALID_CREDENTIALS)
    return principal


def logout(uow: UnitOfWork, session_id: str) -> bool:
    """End a session (UserLoggedOut); False when it was already over. The caller commits."""
    session = find_session(uow.connection, session_id)
    if session is None or session.ended_at is not None:
        return False
    account = load_account(uow, session.username)
    append_account(uow, account, [UserLoggedOut(username=session.username, session_id=session_id)])
    return True


def principal_for_token(connection: Connection, token: str, now: datetime) -> tuple[Principal, str]:
    """The principal a bearer token stands for, and the token id; NotAuthenticated says what is wrong with it."""
    if not looks_like_token(token):
        raise rules.NotAuthenticated("the bearer token is not a TrialStack API token")
    row = find_token(connection, token_sha256(token))
    if row is None:
        raise rules.NotAuthenticated("unknown API token")
    if row.revoked_at is not None:
        raise rules.NotAuthenticated(f"API token {row.token_id} was revoked at {row.revoked_at}")
    if row.expires_at is not None and datetime.fromisoformat(row.expires_at) <= now:
        raise rules.NotAuthenticated(f"API token {row.token_id} expired at {row.expires_at}")
    principal = load_principal(connection, row.username, row.study_id)
    if principal is None:
        raise rules.NotAuthenticated(f"API token {row.token_id} belongs to a disabled account")
    return principal, row.token_id


def _idle_words(idle: timedelta) -> str:
    minutes = int(idle.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}" if minutes else f"{int(idle.total_seconds())} seconds"


def principal_for_session(
    connection: Connection, session_id: str, username: str, now: datetime, idle: timedelta = DEFAULT_IDLE_TIMEOUT
) -> tuple[Principal, datetime]:
    """The principal of an open session and when it was last used; NotAuthenticated when it has ended, and
    SessionExpired when it has been idle for `idle` or longer at `now`. Reads only (see `resume_session`)."""
    session = find_session(connection, session_id)
    if session is None or session.username != username or session.ended_at is not None:
        raise rules.NotAuthenticated("the session has ended; sign in again")
    last_seen = last_activity(connection, session_id) or datetime.fromisoformat(session.started_at)
    if idle_expired(last_seen, now, idle):
        raise SessionExpired(f"the session was idle for more than {_idle_words(idle)}; sign in again")
    principal = load_principal(connection, username)
    if principal is None:
        raise rules.NotAuthenticated("the account is disabled")
    return principal, last_seen


def resume_session(
    engine: Engine, session_id: str, username: str, now: datetime, idle: timedelta = DEFAULT_IDLE_TIMEOUT
) -> Principal:
    """A request in a session: its principal, after checking that the session is open and not idle; the request
    counts as activity, which extends the session (written in its own short transaction, at most every
    ACTIVITY_RESOLUTION, so reads stay reads)."""
    with engine.connect() as connection:
        principal, last_seen = principal_for_session(connection, session_id, username, now, idle)
    if needs_touch(last_seen, now, idle):
        with engine.connect().execution_options(**{WRITE_OPTION: True}) as connection, connection.begin():
            record_activity(connection, session_id, now)
    return principal
