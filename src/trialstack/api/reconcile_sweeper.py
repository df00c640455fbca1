"""The server's periodic missing-sample sweep: every TRIALSTACK_RECONCILE_SWEEP_MINUTES minutes (default 60; 0
disables) each loaded study is swept for expected central lab samples overdue on the clock's day
(`reconcile.handlers.sweep_studies`, one unit of work per study); `trialstack reconcile sweep` does the same once.
How it runs: `api.periodic`."""

from __future__ import annotations

from trialstack.api.periodic import PeriodicThread, PeriodicWork, start_periodic
from trialstack.bootstrap import Platform
from trialstack.reconcile.handlers import sweep_studies

RECONCILE_SWEEP = PeriodicWork(
    "missing-sample sweep",
    "TRIALSTACK_RECONCILE_SWEEP_MINUTES",
    60.0,
    lambda platform, study_id: sum(
        sweep_studies(platform.engine, platform.unit_of_work, platform.clock.now().date(), [study_id]).values()
    ),
)


def start_reconcile_sweeps(platform: Platform) -> PeriodicThread | None:
    return start_periodic(platform, RECONCILE_SWEEP)
