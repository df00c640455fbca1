"""The personal-data vault's master key for the suite's scratch databases.

SQLite keeps a key file beside the database file by default; PostgreSQL has none unless the environment names
one, so for a PostgreSQL database the suite points TRIALSTACK_VAULT_KEY_FILE at a file in its scratch folder
(created with the vault) for as long as it works on it. Child processes inherit the environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import make_url

VAULT_KEY_ENV = ("TRIALSTACK_VAULT_KEY", "TRIALSTACK_VAULT_KEY_FILE")


@contextmanager
def vault_key_for(database_url: str, folder: Path) -> Iterator[None]:
    """Within the block, a vault key for `database_url`: the environment's, SQLite's own, or one in `folder`."""
    configured = any(os.environ.get(name) for name in VAULT_KEY_ENV)
    if configured or make_url(database_url).get_backend_name() != "postgresql":
        yield
        return
    os.environ[VAULT_KEY_ENV[1]] = str(folder / "vault-key")
    try:
        yield
    finally:
        os.environ.pop(VAULT_KEY_ENV[1], None)
