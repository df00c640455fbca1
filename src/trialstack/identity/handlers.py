"""Identity use cases for administrators: accounts, passwords, second factor, grants, API tokens, demo users.

Handlers load the stream, call the pure decision, append through the unit of work and write credentials in the
same transaction; the adapter that opened the unit of work commits it.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select

from trialstack.clock import utc_timestamp
from trialstack.errors import InvalidInput, NotFound
from trialstack.identity import commands as cmd
from trialstack.identity import credentials
from trialstack.identity import model as rules
from trialstack.identity.crypto import NewToken, new_api_token, new_totp_secret, passwords, totp_uri
from trialstack.identity.events import IdentityEvent
from trialstack.identity.policy import Role
from trialstack.identity.readmodel import token_table
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.registry import decode, encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.readmodel import version_in_force

PLATFORM_STUDY = "_platform"
"""The chain of platform-wide facts (accounts, tokens, sign-ins); study ids are upper-case, so it cannot collide."""
USER_STREAM = "user"
ACCESS_STREAM = "access"


def access_stream_id(study_id: str, username: str) -> str:
    return f"{study_id}/{username}"


def load_account(uow: UnitOfWork, username: str) -> rules.Account:
    """Fold the user's stream, from the cached state when there is one (only committed states are cached)."""
    cacheable = not uow.new_events
    cached = uow.cache.get(USER_STREAM, username) if cacheable else None
    state = cached if isinstance(cached, rules.Account) else rules.Account(username)
    events = uow.read_stream(USER_STREAM, username, after_version=state.version)
    for recorded in events:
        payload = decode(recorded)
        if isinstance(payload, IdentityEvent):
            state = rules.evolve(state, payload)
    if events:
        state = replace(state, version=events[-1].stream_version)
        if cacheable:
            uow.cache.put(USER_STREAM, username, state)
    return state


def load_access(uow: UnitOfWork, study_id: str, username: str) -> rules.Access:
    state = rules.Access(study_id, username)
    events = uow.read_stream(ACCESS_STREAM, access_stream_id(study_id, username))
    for recorded in events:
        payload = decode(recorded)
        if isinstance(payload, IdentityEvent):
            state = rules.evolve_access(state, payload)
    return replace(state, version=len(events))


def append_account(
    uow: UnitOfWork,
    account: rules.Account,
    events: list[IdentityEvent],
    reason: str | None = None,
    actor: Actor | None = None,
) -> list[RecordedEvent]:
    new = [encode(event, reason=reason) for event in events]
    return uow.append(PLATFORM_STUDY, USER_STREAM, account.username, new, expected_version=account.version, actor=actor)


def _now(uow: UnitOfWork) -> str:
    return utc_timestamp(uow.clock.now())


def register_user(uow: UnitOfWork, command: cmd.RegisterUser) -> list[RecordedEvent]:
    """Create an account; the Argon2 hash goes to the credential store, the ledger learns only that it exists."""
    account = load_account(uow, command.username)
    recorded = append_account(uow, account, rules.decide_register(account, command))
    credentials.set_password_hash(uow.connection, command.username, passwords().hash(command.password), _now(uow))
    return recorded


def open_participant_account(uow: UnitOfWork, command: cmd.OpenParticipantAccount) -> list[RecordedEvent]:
    """The participant's own account, bound to their subject; the password is hashed like a staff member's."""
    account = load_account(uow, command.username)
    recorded = append_account(uow, account, rules.decide_open_participant(account, command))
    credentials.set_password_hash(uow.connection, command.username, passwords().hash(command.password), _now(uow))
    return recorded


def change_password(uow: UnitOfWork, command: cmd.ChangePassword, reason: str | None = None) -> list[RecordedEvent]:
    account = load_account(uow, command.username)
    recorded = append_account(uow, account, rules.decide_change_password(account, command), reason)
    credentials.set_password_hash(uow.connection, command.username, passwords().hash(command.password), _now(uow))
    return recorded


def set_totp(uow: UnitOfWork, username: str, enabled: bool) -> str | None:
    """Turn the second factor on (a new shared secret; returns its otpauth:// URI, shown once) or off."""
    account = load_account(uow, username)
    append_account(uow, account, rules.decide_set_totp(account, cmd.SetTotp(username, enabled)))
    if not enabled:
        credentials.set_totp_secret(uow.connection, uow.vault, username, None, _now(uow))
        return None
    secret = new_totp_secret()
    credentials.set_totp_secret(uow.connection, uow.vault, username, secret, _now(uow))
    return totp_uri(secret, username)


def disable_user(uow: UnitOfWork, command: cmd.DisableUser) -> list[RecordedEvent]:
    account = load_account(uow, command.username)
    return append_account(uow, account, rules.decide_disable(account, command), command.reason)


def enable_user(uow: UnitOfWork, command: cmd.EnableUser) -> list[RecordedEvent]:
    account = load_account(uow, command.username)
    return append_account(uow, account, rules.decide_enable(account, command), command.reason)


def unlock_user(uow: UnitOfWork, command: cmd.UnlockUser) -> list[RecordedEvent]:
    account = load_account(uow, command.username)
    return append_account(uow, account, rules.decide_unlock(account, command, uow.clock.now()), command.reason)


def issue_api_token(
    uow: UnitOfWork,
    username: str,
    expires_at: datetime | None = None,
    study_id: str | None = None,
    label: str | None = None,
) -> NewToken:
    """Draw a token and record its SHA-256; the returned secret is the only copy there will ever be."""
    token = new_api_token()
    account = load_account(uow, username)
    command = cmd.IssueApiToken(username, token.token_id, token.sha256, expires_at, study_id, label)
    append_account(uow, account, rules.decide_issue_token(account, command, uow.clock.now()))
    return token


def revoke_api_token(uow: UnitOfWork, token_id: str, reason: str | None = None) -> list[RecordedEvent]:
    owner = uow.connection.execute(select(token_table.c.username).where(token_table.c.token_id == token_id)).scalar()
    if owner is None:
        raise NotFound(f"no API token {token_id}", field="token_id")
    account = load_account(uow, str(owner))
    decided = rules.decide_revoke_token(account, cmd.RevokeApiToken(account.username, token_id))
    return append_account(uow, account, decided, reason)


def study_sites(uow: UnitOfWork, study_id: str) -> frozenset[str] | None:
    """The sites of the StudyVersion in force, or None when the study is not loaded yet."""
    version = version_in_force(uow.connection, study_id)
    return frozenset(site.id for site in version.definition.sites) if version is not None else None


def grant_role(uow: UnitOfWork, command: cmd.GrantRole) -> list[RecordedEvent]:
    """Grant a role, in the chain of the study it opens (sites checked against the loaded study)."""
    account = load_account(uow, command.username)
    access = load_access(uow, command.study_id, command.username)
    decided = rules.decide_grant(account, access, command, study_sites(uow, command.study_id))
    return uow.append(
        command.study_id, ACCESS_STREAM, access_stream_id(command.study_id, command.username),
        [encode(event, reason=command.reason) for event in decided], expected_version=access.version,
    )  # fmt: skip


def revoke_role(uow: UnitOfWork, command: cmd.RevokeRole) -> list[RecordedEvent]:
    access = load_access(uow, command.study_id, command.username)
    return uow.append(
        command.study_id, ACCESS_STREAM, access_stream_id(command.study_id, command.username),
        [encode(event, reason=command.reason) for event in rules.decide_revoke(access, command)],
        expected_version=access.version,
    )  # fmt: skip


def _demo_password() -> str:
    while True:
        candidate = secrets.token_urlsafe(12)
        if not rules.password_problems("demo", candidate):
            return candidate


def create_demo_users(uow: UnitOfWork, study_id: str, sites: list[str]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """One user per role for `trialstack demo`: site roles at the first site, the others at every site.

    Returns (username, password, role, sites) for the demo to print; passwords are drawn afresh each time.
    """
    if not sites:
        raise InvalidInput(f"study {study_id} has no site to give site roles at", field="sites")
    created = []
    for role in Role:
        if role is Role.PARTICIPANT:  # opened by the participant from an invitation, never granted
            continue
        username = f"demo-{role.value.replace('_', '-')}"
        password = _demo_password()
        display = f"Demo {role.value.replace('_', ' ').title()}"
        register_user(uow, cmd.RegisterUser(username, display, password))
        held = frozenset({sites[0]}) if role in rules.SITE_ROLES else frozenset()
        grant_role(uow, cmd.GrantRole(username, study_id, role, held))
        created.append((username, password, role.value, tuple(sorted(held)) or (rules.EVERY_SITE,)))
    return created
