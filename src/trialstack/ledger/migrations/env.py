"""Alembic environment: the engine is handed in by `trialstack.ledger.migrate`."""

from __future__ import annotations

from alembic import context

from trialstack.ledger.schema import ledger_metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=ledger_metadata, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
