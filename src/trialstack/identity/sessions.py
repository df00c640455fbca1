"""Signed session cookies, their CSRF tokens, and the idle clock of a session.

The cookie carries only the session id and username, signed and time-stamped: it cannot be forged without the
key, it expires after SESSION_MAX_AGE, and the session must still be open in the read model (logout, disabling
the user or changing the password ends it). The CSRF token is an HMAC of the session id under the same key: a
page can read and echo it, another origin cannot compute it (signed double-submit).

A session also ends after a period without activity (`Settings.session_idle_minutes`, 15 minutes by default). The
last activity is kept in the database (`identity_session_activity`, created by migration 0005), not in the cookie
nor in process memory, so every worker of a deployment agrees, and a copied cookie cannot extend it. It is not a
projection: `rebuild` leaves it alone. Activity is written at most once per ACTIVITY_RESOLUTION, so a session
expires between `idle - ACTIVITY_RESOLUTION` and `idle` after its last request.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Column, Connection, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from trialstack.clock import utc_timestamp

SESSION_MAX_AGE = timedelta(hours=8)
DEFAULT_IDLE_TIMEOUT = timedelta(minutes=15)
ACTIVITY_RESOLUTION = timedelta(seconds=30)
"""Activity newer than this is not written again: one write per session per half minute at most."""
_SALT = "trialstack.session.v1"

session_metadata = MetaData()

session_activity = Table(
    "identity_session_activity",
    session_metadata,
    Column("session_id", String(64), primary_key=True),
    Column("last_seen_at", String(27), nullable=False, index=True),
)


@dataclass(frozen=True)
class SessionClaim:
    session_id: str
    username: str


class SessionSigner:
    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")
        self._serializer = URLSafeTimedSerializer(key, salt=_SALT)

    def dumps(self, claim: SessionClaim) -> str:
        return self._serializer.dumps({"sid": claim.session_id, "u": claim.username})

    def loads(self, cookie: str) -> SessionClaim | None:
        """The claim of a cookie that is authentic and younger than SESSION_MAX_AGE, else None."""
        try:
            data = self._serializer.loads(cookie, max_age=int(SESSION_MAX_AGE.total_seconds()))
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str) or not isinstance(data.get("u"), str):
            return None
        return SessionClaim(data["sid"], data["u"])

    def csrf_token(self, session_id: str) -> str:
        return hmac.new(self._key, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, session_id: str, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(self.csrf_token(session_id), presented)


def last_activity(connection: Connection, session_id: str) -> datetime | None:
    """When the session was last used (None for a session opened before activity was recorded)."""
    value = connection.execute(
        select(session_activity.c.last_seen_at).where(session_activity.c.session_id == session_id)
    ).scalar()
    return datetime.fromisoformat(str(value)) if value is not None else None


def idle_expired(last_seen: datetime, now: datetime, idle: timedelta) -> bool:
    """A session last used at `last_seen` is over at `now` when it has been idle for `idle` or longer."""
    return now - last_seen >= idle


def needs_touch(last_seen: datetime, now: datetime, idle: timedelta) -> bool:
    """Whether a request at `now` must record itself (finer than the idle timeout, coarse enough to write rarely)."""
    return now - last_seen >= min(ACTIVITY_RESOLUTION, idle / 4)


def record_activity(connection: Connection, session_id: str, now: datetime) -> None:
    """The session was used at `now`; never moves the last activity backwards (workers race, clocks differ)."""
    at = utc_timestamp(now)
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(session_activity).values(session_id=session_id, last_seen_at=at)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[session_activity.c.session_id],
            set_={"last_seen_at": at},
            where=session_activity.c.last_seen_at < at,
        )
    )


def forget_stale_activity(connection: Connection, now: datetime) -> None:
    """Drop the activity of sessions whose cookie has expired anyway (keeps the table as small as the live set)."""
    cutoff = utc_timestamp(now - SESSION_MAX_AGE)
    connection.execute(session_activity.delete().where(session_activity.c.last_seen_at < cutoff))
