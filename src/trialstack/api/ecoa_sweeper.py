"""The server's periodic eCOA sweep: every TRIALSTACK_ECOA_SWEEP_MINUTES minutes (default 5; 0 disables) each
loaded study is swept for missed diary entries and low compliance (`ecoa.handlers.sweep_study`, one unit of work
per subject); `trialstack ecoa sweep` does the same once. How it runs: `api.periodic`."""

from __future__ import annotations

from trialstack.api.periodic import PeriodicThread, PeriodicWork, start_periodic
from trialstack.bootstrap import Platform
from trialstack.ecoa.handlers import sweep_study

ECOA_SWEEP = PeriodicWork(
    "eCOA sweep",
    "TRIALSTACK_ECOA_SWEEP_MINUTES",
    5.0,
    lambda platform, study_id: sweep_study(platform.engine, platform.unit_of_work, study_id),
)


def start_sweeper(platform: Platform) -> PeriodicThread | None:
    return start_periodic(platform, ECOA_SWEEP)
