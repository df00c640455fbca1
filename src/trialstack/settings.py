"""Settings from the environment; nothing here opens a connection."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///./trialstack.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000

    @classmethod
    def from_env(cls, database_url: str | None = None) -> Settings:
        """Read settings; an explicit `database_url` (the CLI's --db) wins over TRIALSTACK_DATABASE_URL."""
        return cls(
            database_url=database_url or os.environ.get("TRIALSTACK_DATABASE_URL") or DEFAULT_DATABASE_URL,
            host=os.environ.get("TRIALSTACK_HOST", "127.0.0.1"),
            port=int(os.environ.get("TRIALSTACK_PORT", "8000")),
        )
