"""Read model of identity: users, grants, API tokens and sessions, as projections of the ledger.

`trialstack rebuild` drops and replays these tables; the credential store (credentials.py) is not among them.
Every request authenticates against these tables, so they are kept narrow and indexed on what is looked up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Column, Connection, Index, MetaData, String, Table, select

from trialstack.identity.events import ACCESS_EVENTS, ACCOUNT_EVENTS
from trialstack.identity.policy import ALL_SITES, Grant, Principal, Role
from trialstack.ledger.envelope import RecordedEvent

readmodel_metadata = MetaData()

user_table = Table(
    "rm_identity_user",
    readmodel_metadata,
    Column("username", String(64), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("totp", Boolean, nullable=False),
    Column("locked_until", String(27)),
    Column("registered_at", String(27), nullable=False),
)

grant_table = Table(
    "rm_identity_grant",
    readmodel_metadata,
    Column("study_id", String(64), primary_key=True),
    Column("username", String(64), primary_key=True),
    Column("role", String(32), primary_key=True),
    Column("sites", String(2000), nullable=False),
    Column("granted_at", String(27), nullable=False),
    Column("subject_id", String(64)),
)
Index("ix_rm_identity_grant_username", grant_table.c.username)

token_table = Table(
    "rm_identity_token",
    readmodel_metadata,
    Column("token_id", String(32), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("username", String(64), nullable=False, index=True),
    Column("study_id", String(64)),
    Column("label", String(200)),
    Column("issued_at", String(27), nullable=False),
    Column("expires_at", String(27)),
    Column("revoked_at", String(27)),
)

session_table = Table(
    "rm_identity_session",
    readmodel_metadata,
    Column("session_id", String(64), primary_key=True),
    Column("username", String(64), nullable=False, index=True),
    Column("method", String(32), nullable=False),
    Column("started_at", String(27), nullable=False),
    Column("ended_at", String(27)),
)


def _sites_text(sites: Sequence[str]) -> str:
    return ",".join(sorted(sites))


def _sites(text: str) -> frozenset[str]:
    return frozenset(text.split(",")) if text else frozenset()


def _end_sessions(connection: Connection, username: str, at: str) -> None:
    connection.execute(
        session_table.update()
        .where(session_table.c.username == username, session_table.c.ended_at.is_(None))
        .values(ended_at=at)
    )


def _set_user(connection: Connection, username: str, **values: Any) -> None:
    connection.execute(user_table.update().where(user_table.c.username == username).values(**values))


def _grant(connection: Connection, event: RecordedEvent, p: dict[str, Any]) -> None:
    key = (grant_table.c.study_id == p["study_id"], grant_table.c.username == p["username"])
    role = grant_table.c.role == p["role"]
    held = connection.execute(select(grant_table.c.sites).where(*key, role)).scalar()
    if event.event_type == "RoleGranted":
        added = set(p["sites"])
        sites = added if "*" in added or held is None else _sites(held) | added
        connection.execute(grant_table.delete().where(*key, role))
        connection.execute(
            grant_table.insert().values(
                study_id=p["study_id"], username=p["username"], role=p["role"], sites=_sites_text(sorted(sites)),
                granted_at=event.recorded_at,
            )
        )  # fmt: skip
        return
    left = set() if p["sites"] is None or held is None else _sites(held) - set(p["sites"])
    if left:
        connection.execute(grant_table.update().where(*key, role).values(sites=_sites_text(sorted(left))))
    else:
        connection.execute(grant_table.delete().where(*key, role))


def _account(connection: Connection, event: RecordedEvent, p: dict[str, Any]) -> None:
    name, at, kind = p["username"], event.recorded_at, event.event_type
    if kind == "UserRegistered":
        connection.execute(
            user_table.insert().values(
                username=name, display_name=p["display_name"], disabled=False, totp=False, registered_at=at
            )
        )
    elif kind == "ParticipantAccountOpened":
        connection.execute(
            user_table.insert().values(
                username=name, display_name=p["display_name"], disabled=False, totp=False, registered_at=at
            )
        )
        connection.execute(
            grant_table.insert().values(
                study_id=p["study_id"], username=name, role="participant", sites=p["site_id"], granted_at=at,
                subject_id=p["subject_id"],
            )
        )  # fmt: skip
    elif kind in ("UserDisabled", "UserEnabled"):
        _set_user(connection, name, disabled=kind == "UserDisabled")
        if kind == "UserDisabled":
            _end_sessions(connection, name, at)
    elif kind in ("TotpEnabled", "TotpDisabled"):
        _set_user(connection, name, totp=kind == "TotpEnabled")
    elif kind == "UserLockedOut":
        _set_user(connection, name, locked_until=p["locked_until"])
    elif kind in ("UserUnlocked", "PasswordChanged"):
        _set_user(connection, name, locked_until=None)
        if kind == "PasswordChanged":
            _end_sessions(connection, name, at)
    elif kind == "UserLoggedIn":
        connection.execute(
            session_table.insert().values(session_id=p["session_id"], username=name, method=p["method"], started_at=at)
        )
    elif kind == "UserLoggedOut":
        connection.execute(
            session_table.update().where(session_table.c.session_id == p["session_id"]).values(ended_at=at)
        )
    elif kind == "ApiTokenIssued":
        connection.execute(
            token_table.insert().values(
                token_id=p["token_id"], token_sha256=p["token_sha256"], username=name, study_id=p.get("study_id"),
                label=p.get("label"), issued_at=at, expires_at=p.get("expires_at"),
            )
        )  # fmt: skip
    elif kind == "ApiTokenRevoked":
        connection.execute(token_table.update().where(token_table.c.token_id == p["token_id"]).values(revoked_at=at))


_APPLY: dict[str, Callable[[Connection, RecordedEvent, dict[str, Any]], None]] = {
    **{kind.__name__: _account for kind in ACCOUNT_EVENTS},
    **{kind.__name__: _grant for kind in ACCESS_EVENTS},
}


class IdentityReadModel:
    """Users, grants, tokens and sessions; sign-in failures change nothing here but `locked_until`."""

    name = "identity.accounts"
    tables = (user_table, grant_table, token_table, session_table)
    event_types = frozenset(_APPLY)

    def apply(self, connection: Connection, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            _APPLY[event.event_type](connection, event, event.payload)


@dataclass(frozen=True)
class UserRow:
    username: str
    display_name: str
    disabled: bool
    totp: bool
    locked_until: str | None
    registered_at: str


@dataclass(frozen=True)
class TokenRow:
    token_id: str
    username: str
    study_id: str | None
    label: str | None
    issued_at: str
    expires_at: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    username: str
    method: str
    started_at: str
    ended_at: str | None


def find_user(connection: Connection, username: str) -> UserRow | None:
    row = connection.execute(select(user_table).where(user_table.c.username == username)).first()
    return UserRow(*row) if row is not None else None


def grants_of(connection: Connection, username: str, study_id: str | None = None) -> tuple[Grant, ...]:
    statement = select(grant_table.c.study_id, grant_table.c.role, grant_table.c.sites, grant_table.c.subject_id).where(
        grant_table.c.username == username
    )
    if study_id is not None:
        statement = statement.where(grant_table.c.study_id == study_id)
    rows = connection.execute(statement.order_by(grant_table.c.study_id, grant_table.c.role))
    return tuple(
        Grant(str(study), Role(role), ALL_SITES if sites == "*" else _sites(str(sites)), subject)
        for study, role, sites, subject in rows
    )


def load_principal(connection: Connection, username: str, study_id: str | None = None) -> Principal | None:
    """The user with their grants (only those in `study_id` for a study-scoped token); None when disabled."""
    user = find_user(connection, username)
    if user is None or user.disabled:
        return None
    return Principal(f"user:{username}", username, user.display_name, grants_of(connection, username, study_id))


def participant_account(connection: Connection, study_id: str, subject_id: str) -> str | None:
    """The username of the subject's participant account, if the participant has activated one."""
    statement = select(grant_table.c.username).where(
        grant_table.c.study_id == study_id, grant_table.c.subject_id == subject_id
    )
    return connection.execute(statement).scalar()


def find_token(connection: Connection, token_sha256: str) -> TokenRow | None:
    row = connection.execute(
        select(
            token_table.c.token_id, token_table.c.username, token_table.c.study_id, token_table.c.label,
            token_table.c.issued_at, token_table.c.expires_at, token_table.c.revoked_at,
        ).where(token_table.c.token_sha256 == token_sha256)
    ).first()  # fmt: skip
    return TokenRow(*row) if row is not None else None


def list_tokens(connection: Connection, username: str | None = None) -> list[TokenRow]:
    statement = select(
        token_table.c.token_id, token_table.c.username, token_table.c.study_id, token_table.c.label,
        token_table.c.issued_at, token_table.c.expires_at, token_table.c.revoked_at,
    ).order_by(token_table.c.username, token_table.c.issued_at)  # fmt: skip
    if username is not None:
        statement = statement.where(token_table.c.username == username)
    return [TokenRow(*row) for row in connection.execute(statement)]


def find_session(connection: Connection, session_id: str) -> SessionRow | None:
    row = connection.execute(select(session_table).where(session_table.c.session_id == session_id)).first()
    return SessionRow(*row) if row is not None else None


def list_users(connection: Connection, study_id: str | None = None) -> list[tuple[UserRow, tuple[Grant, ...]]]:
    """Users with their grants; with `study_id`, only those who hold a role in that study."""
    statement = select(user_table).order_by(user_table.c.username)
    if study_id is not None:
        statement = statement.where(
            user_table.c.username.in_(select(grant_table.c.username).where(grant_table.c.study_id == study_id))
        )
    users = [UserRow(*row) for row in connection.execute(statement)]
    return [(user, grants_of(connection, user.username, study_id)) for user in users]
