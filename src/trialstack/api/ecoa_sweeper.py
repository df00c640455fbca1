"""The server's periodic eCOA sweep: every TRIALSTACK_ECOA_SWEEP_MINUTES minutes (default 5; 0 disables) each
loaded study is swept for missed diary entries and low compliance (`ecoa.handlers.sweep_study`, one unit of work
per subject), in a daemon thread so the event loop is never blocked. The first sweep runs one period after start;
an error is logged and the next period runs as usual. `trialstack ecoa sweep` does the same once, by hand."""

from __future__ import annotations

import logging
import os
import threading

from trialstack.bootstrap import Platform
from trialstack.ecoa.handlers import sweep_study
from trialstack.protocol.readmodel import list_versions

ENVIRONMENT = "TRIALSTACK_ECOA_SWEEP_MINUTES"
DEFAULT_MINUTES = 5.0
log = logging.getLogger("trialstack.ecoa.sweep")


def sweep_minutes() -> float:
    """The period from the environment; a value that is not a number is logged and the default used."""
    text = os.environ.get(ENVIRONMENT, "").strip()
    if not text:
        return DEFAULT_MINUTES
    try:
        minutes = float(text)
    except ValueError:
        log.warning("%s=%r is not a number of minutes; sweeping every %s", ENVIRONMENT, text, DEFAULT_MINUTES)
        return DEFAULT_MINUTES
    return max(minutes, 0.0)


def sweep_all(platform: Platform) -> int:
    """Sweep every study with a version in force; returns the events appended. A failing study is logged."""
    with platform.engine.connect() as connection:
        studies = sorted({v.study_id for v in list_versions(connection) if v.in_force})
    appended = 0
    for study_id in studies:
        try:
            appended += sweep_study(platform.engine, platform.unit_of_work, study_id)
        except Exception:  # the sweep must outlive one study's problem; the next period tries again
            log.exception("eCOA sweep of study %s failed", study_id)
    return appended


class Sweeper:
    """A daemon thread that sweeps every `minutes` until stopped."""

    def __init__(self, platform: Platform, minutes: float) -> None:
        self.platform = platform
        self.period = minutes * 60
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ecoa-sweep", daemon=True)

    def _run(self) -> None:
        while not self.stopping.wait(self.period):
            try:
                appended = sweep_all(self.platform)
                if appended:
                    log.info("eCOA sweep appended %d events", appended)
            except Exception:
                log.exception("eCOA sweep failed")

    def start(self) -> Sweeper:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)


def start_sweeper(platform: Platform) -> Sweeper | None:
    """Start the periodic sweep unless the period is 0."""
    minutes = sweep_minutes()
    return Sweeper(platform, minutes).start() if minutes > 0 else None
