"""The server's periodic KRI check: every TRIALSTACK_KRI_CHECK_MINUTES minutes (default 15; 0 disables) the KRIs of
each loaded study are computed and every status that changed is recorded as KriThresholdCrossed
(`ops.handlers.check_studies`, one unit of work per study); `trialstack ops kri-check` does the same once. How it
runs: `api.periodic`."""

from __future__ import annotations

from trialstack.api.periodic import PeriodicThread, PeriodicWork, start_periodic
from trialstack.bootstrap import Platform
from trialstack.ops.handlers import check_studies

KRI_CHECK = PeriodicWork(
    "KRI check",
    "TRIALSTACK_KRI_CHECK_MINUTES",
    15.0,
    lambda platform, study_id: sum(check_studies(platform.engine, platform.unit_of_work, [study_id]).values()),
)


def start_kri_checks(platform: Platform) -> PeriodicThread | None:
    return start_periodic(platform, KRI_CHECK)
