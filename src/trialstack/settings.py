"""Settings from the environment; nothing here opens a connection."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from trialstack.errors import InvalidInput

DEFAULT_DATABASE_URL = "sqlite:///./trialstack.db"
DEFAULT_SESSION_IDLE_MINUTES = 15
MAX_SESSION_IDLE_MINUTES = 8 * 60
"""A session ends 8 hours after sign-in whatever its activity (identity.sessions.SESSION_MAX_AGE)."""


def _idle_minutes(text: str | None) -> int:
    if text is None or not text.strip():
        return DEFAULT_SESSION_IDLE_MINUTES
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(
            f"TRIALSTACK_SESSION_IDLE_MINUTES must be a whole number of minutes, not {text!r}",
            field="TRIALSTACK_SESSION_IDLE_MINUTES",
        ) from None


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    session_idle_minutes: int = DEFAULT_SESSION_IDLE_MINUTES
    """Minutes without a request after which a staff web session ends (TRIALSTACK_SESSION_IDLE_MINUTES)."""
    vault_key: str | None = field(default_factory=lambda: os.environ.get("TRIALSTACK_VAULT_KEY") or None)
    """The personal-data vault's master key (URL-safe base64 of 32 bytes); never stored in the database."""
    vault_key_file: str | None = field(default_factory=lambda: os.environ.get("TRIALSTACK_VAULT_KEY_FILE") or None)
    """A file holding that key; without either, SQLite keeps it in `<database file>.vault-key`."""

    def __post_init__(self) -> None:
        if not 1 <= self.session_idle_minutes <= MAX_SESSION_IDLE_MINUTES:
            raise InvalidInput(
                f"the session idle timeout must be between 1 and {MAX_SESSION_IDLE_MINUTES} minutes,"
                f" not {self.session_idle_minutes}",
                field="TRIALSTACK_SESSION_IDLE_MINUTES",
            )

    @property
    def session_idle_timeout(self) -> timedelta:
        return timedelta(minutes=self.session_idle_minutes)

    @classmethod
    def from_env(cls, database_url: str | None = None) -> Settings:
        """Read settings; an explicit `database_url` (the CLI's --db) wins over TRIALSTACK_DATABASE_URL."""
        return cls(
            database_url=database_url or os.environ.get("TRIALSTACK_DATABASE_URL") or DEFAULT_DATABASE_URL,
            host=os.environ.get("TRIALSTACK_HOST", "127.0.0.1"),
            port=int(os.environ.get("TRIALSTACK_PORT", "8000")),
            session_idle_minutes=_idle_minutes(os.environ.get("TRIALSTACK_SESSION_IDLE_MINUTES")),
        )
