"""Schema migrations with Alembic, run programmatically (no alembic.ini needed): `trialstack init`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the ledger schema; running it on an up-to-date database changes nothing."""
    command.upgrade(alembic_config(engine), revision)
