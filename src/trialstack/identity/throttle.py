"""Throttling of sign-in attempts per (username, client address), kept in the database.

The ledger's lockout protects one account from slow guessing across the world; this protects the service from
fast guessing from one place, and is the only brake on attempts against unknown or locked accounts, which are
never written to the ledger. The failures live in `identity_sign_in_failure` (migration 0005), so every API
worker and web process of a deployment counts the same attempts, and a restart forgets nothing. It is not a
projection: `rebuild` leaves it alone.

A row holds a SHA-256 of the username and address, never the attacker-chosen text itself, and the time; rows
older than the window are deleted as new failures arrive. Two processes checking at the same instant may both let
one more attempt through; the lockout (5 failures in a row, in the ledger) caps the account either way.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Column, Engine, Index, Integer, MetaData, String, Table, func, select

from trialstack.clock import utc_timestamp
from trialstack.identity.model import TooManyAttempts
from trialstack.ledger.database import WRITE_OPTION

throttle_metadata = MetaData()

sign_in_failure = Table(
    "identity_sign_in_failure",
    throttle_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("attempt_key", String(64), nullable=False),
    Column("failed_at", String(27), nullable=False),
)
Index("ix_identity_sign_in_failure_key_time", sign_in_failure.c.attempt_key, sign_in_failure.c.failed_at)
Index("ix_identity_sign_in_failure_time", sign_in_failure.c.failed_at)

DEFAULT_LIMIT = 10
DEFAULT_WINDOW = timedelta(minutes=5)


def attempt_key(username: str, address: str) -> str:
    """What a failure is counted under: the username (case-insensitive) and the client address, hashed."""
    return hashlib.sha256(f"{username.strip().lower()}\x00{address}".encode()).hexdigest()


def refusal(failures: Sequence[datetime], now: datetime, limit: int, window: timedelta) -> TooManyAttempts | None:
    """The refusal due when `failures` (any order) hold `limit` or more within `window` before `now`, else None.

    `retry_after` is the whole seconds (rounded up) until enough failures have left the window to allow one more.
    """
    recent = sorted(at for at in failures if now - at < window)
    if len(recent) < limit:
        return None
    leaves = recent[len(recent) - limit] + window
    retry = max(1, math.ceil((leaves - now).total_seconds()))
    return TooManyAttempts(f"too many sign-in attempts; try again in {retry} seconds", retry_after=retry)


class LoginThrottle:
    """`limit` failed sign-ins per (username, address) within `window`, counted in the database of `engine`."""

    def __init__(self, engine: Engine, limit: int = DEFAULT_LIMIT, window: timedelta = DEFAULT_WINDOW) -> None:
        self.engine = engine
        self.limit = limit
        self.window = window

    def _failures(self, key: str, now: datetime) -> list[datetime]:
        since = utc_timestamp(now - self.window)
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(sign_in_failure.c.failed_at)
                .where(sign_in_failure.c.attempt_key == key, sign_in_failure.c.failed_at > since)
                .order_by(sign_in_failure.c.failed_at.desc())
                .limit(self.limit)
            )
            return [datetime.fromisoformat(str(at)) for (at,) in rows]

    def check(self, username: str, address: str, now: datetime) -> None:
        """Raise TooManyAttempts when `limit` failures fell in the last `window` from this address for this user."""
        refused = refusal(self._failures(attempt_key(username, address), now), now, self.limit, self.window)
        if refused is not None:
            raise refused

    def failed(self, username: str, address: str, now: datetime) -> None:
        """Count a failed attempt, and forget every failure that has left the window."""
        with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as connection, connection.begin():
            connection.execute(
                sign_in_failure.delete().where(sign_in_failure.c.failed_at <= utc_timestamp(now - self.window))
            )
            connection.execute(
                sign_in_failure.insert().values(
                    attempt_key=attempt_key(username, address), failed_at=utc_timestamp(now)
                )
            )

    def succeeded(self, username: str, address: str) -> None:
        """A success from this address clears its count for the user."""
        with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as connection, connection.begin():
            connection.execute(
                sign_in_failure.delete().where(sign_in_failure.c.attempt_key == attempt_key(username, address))
            )

    def count(self, username: str, address: str, now: datetime) -> int:
        """Failures in the window for this user and address (for administrators and tests)."""
        key = attempt_key(username, address)
        since = utc_timestamp(now - self.window)
        with self.engine.connect() as connection:
            found = connection.execute(
                select(func.count())
                .select_from(sign_in_failure)
                .where(sign_in_failure.c.attempt_key == key, sign_in_failure.c.failed_at > since)
            )
            return int(found.scalar_one())
