"""The server's periodic missing-sample sweep: every TRIALSTACK_RECONCILE_SWEEP_MINUTES minutes (default 60; 0
disables) each loaded study is swept for expected central lab samples overdue on the clock's day
(`reconcile.handlers.sweep_studies`, one unit of work per study), in a daemon thread so the event loop is never
blocked. The first sweep runs one period after start; a failing study is logged and the next period runs as usual.
`trialstack reconcile sweep` does the same once, by hand or from cron.
"""

from __future__ import annotations

import logging
import os
import threading

from trialstack.bootstrap import Platform
from trialstack.protocol.readmodel import list_versions
from trialstack.reconcile.handlers import sweep_studies

ENVIRONMENT = "TRIALSTACK_RECONCILE_SWEEP_MINUTES"
DEFAULT_MINUTES = 60.0
log = logging.getLogger("trialstack.reconcile.sweep")


def sweep_minutes() -> float:
    """The period from the environment; a value that is not a number is logged and the default used."""
    text = os.environ.get(ENVIRONMENT, "").strip()
    if not text:
        return DEFAULT_MINUTES
    try:
        return max(float(text), 0.0)
    except ValueError:
        log.warning("%s=%r is not a number of minutes; sweeping every %s", ENVIRONMENT, text, DEFAULT_MINUTES)
        return DEFAULT_MINUTES


def sweep_all(platform: Platform) -> int:
    """Sweep every study with a version in force; returns the discrepancy events appended. A failing study is
    logged and the others are still swept."""
    with platform.engine.connect() as connection:
        studies = sorted({v.study_id for v in list_versions(connection) if v.in_force})
    today = platform.clock.now().date()
    appended = 0
    for study_id in studies:
        try:
            appended += sum(sweep_studies(platform.engine, platform.unit_of_work, today, [study_id]).values())
        except Exception:  # one study's problem must not stop the others; the next period tries again
            log.exception("missing-sample sweep of study %s failed", study_id)
    return appended


class ReconcileSweeper:
    """A daemon thread that sweeps every `minutes` until stopped."""

    def __init__(self, platform: Platform, minutes: float) -> None:
        self.platform = platform
        self.period = minutes * 60
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="reconcile-sweep", daemon=True)

    def _run(self) -> None:
        while not self.stopping.wait(self.period):
            try:
                appended = sweep_all(self.platform)
                if appended:
                    log.info("missing-sample sweep raised or resolved %d discrepancies", appended)
            except Exception:
                log.exception("missing-sample sweep failed")

    def start(self) -> ReconcileSweeper:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)


def start_reconcile_sweeps(platform: Platform) -> ReconcileSweeper | None:
    """Start the periodic sweep unless the period is 0."""
    minutes = sweep_minutes()
    return ReconcileSweeper(platform, minutes).start() if minutes > 0 else None
