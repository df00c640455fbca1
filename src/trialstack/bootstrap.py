"""The composition root: the only module that knows every context. It wires store, projections and reactors."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

import trialstack.bdd.events  # noqa: F401  (registers SpecificationGateOverridden for decode and the feed)
from trialstack.capture.readmodel import CasebookReadModel
from trialstack.capture.status_readmodel import CasebookStatusReadModel
from trialstack.clock import Clock, SystemClock, utc_timestamp
from trialstack.consent import handlers as consent_policies
from trialstack.consent.readmodel import ConsentReadModel
from trialstack.ecoa.readmodel import EcoaReadModel
from trialstack.identity.readmodel import IdentityReadModel
from trialstack.integration.webhooks.readmodel import WebhookReadModel
from trialstack.irt.readmodel import IrtReadModel
from trialstack.labs.readmodel import LabsReadModel
from trialstack.ledger.cache import StreamStateCache
from trialstack.ledger.database import make_engine
from trialstack.ledger.envelope import Actor
from trialstack.ledger.migrate import upgrade
from trialstack.ledger.projections import ensure_projections
from trialstack.ledger.readmodel import StreamIndex
from trialstack.ledger.uow import UnitOfWork
from trialstack.ledger.vault import Vault, VaultKeySource
from trialstack.ledger.wiring import LedgerWiring
from trialstack.ops.readmodel import OpsReadModel
from trialstack.protocol.readmodel import StudyVersions
from trialstack.queries import handlers as query_policies
from trialstack.queries.readmodel import QueryReadModel
from trialstack.reconcile import handlers as reconcile_policies
from trialstack.reconcile.readmodel import ReconcileReadModel
from trialstack.settings import Settings


def build_wiring() -> LedgerWiring:
    """Every context's projections and policy reactors, in the order they run inside a unit of work."""
    wiring = LedgerWiring()
    wiring.add_projection(StreamIndex())
    wiring.add_projection(StudyVersions())
    wiring.add_projection(CasebookReadModel())
    wiring.add_projection(CasebookStatusReadModel())
    wiring.add_projection(QueryReadModel())
    wiring.add_projection(IdentityReadModel())
    wiring.add_projection(ConsentReadModel())
    wiring.add_projection(EcoaReadModel())
    wiring.add_projection(IrtReadModel())
    wiring.add_projection(LabsReadModel())
    wiring.add_projection(OpsReadModel())
    wiring.add_projection(ReconcileReadModel())
    wiring.add_projection(WebhookReadModel())
    for event_type, reactor in (*query_policies.REACTORS.items(), *consent_policies.REACTORS.items()):
        wiring.add_reactor([event_type], reactor)
    wiring.add_batch_reactor(sorted(reconcile_policies.REACTS_TO), reconcile_policies.reconcile_batch)
    return wiring


@dataclass
class Platform:
    """A running TrialStack: settings, the database engine, the wiring, the clock and the personal-data vault."""

    settings: Settings
    engine: Engine
    wiring: LedgerWiring
    clock: Clock = field(default_factory=SystemClock)
    cache: StreamStateCache = field(default_factory=StreamStateCache)
    vault: Vault = field(default_factory=lambda: Vault(VaultKeySource(ephemeral=True)))

    def unit_of_work(self, actor: Actor, correlation_id: str | None = None) -> UnitOfWork:
        return UnitOfWork(self.engine, self.wiring, self.clock, actor, correlation_id, self.cache, self.vault)

    def check_vault(self) -> None:
        """Open the vault now: a missing or wrong master key is one clear error before anything is served."""
        self.vault.check(self.engine, utc_timestamp(self.clock.now()))

    def close(self) -> None:
        self.engine.dispose()


def bootstrap(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    clock: Clock | None = None,
    migrate: bool = False,
) -> Platform:
    """Open the store named by the settings (or `database_url`); with `migrate`, create or upgrade the schema."""
    settings = settings or Settings.from_env(database_url)
    engine = make_engine(settings.database_url)
    wiring = build_wiring()
    if migrate:
        upgrade(engine)
        ensure_projections(engine, wiring)
    vault = Vault(VaultKeySource.from_settings(settings.database_url, settings.vault_key, settings.vault_key_file))
    return Platform(settings=settings, engine=engine, wiring=wiring, clock=clock or SystemClock(), vault=vault)
