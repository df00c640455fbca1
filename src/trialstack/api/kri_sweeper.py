"""The server's periodic KRI check: every TRIALSTACK_KRI_CHECK_MINUTES minutes (default 15; 0 disables) the KRIs of
each loaded study are computed and every status that changed is recorded as KriThresholdCrossed
(`ops.handlers.check_studies`, one unit of work per study), in a daemon thread so the event loop is never blocked.
The first check runs one period after start; a failing study is logged and the next period runs as usual.
`trialstack ops kri-check` does the same once, by hand or from cron.
"""

from __future__ import annotations

import logging
import os
import threading

from trialstack.bootstrap import Platform
from trialstack.ops.handlers import check_studies
from trialstack.protocol.readmodel import list_versions

ENVIRONMENT = "TRIALSTACK_KRI_CHECK_MINUTES"
DEFAULT_MINUTES = 15.0
log = logging.getLogger("trialstack.ops.kri_check")


def check_minutes() -> float:
    """The period from the environment; a value that is not a number is logged and the default used."""
    text = os.environ.get(ENVIRONMENT, "").strip()
    if not text:
        return DEFAULT_MINUTES
    try:
        return max(float(text), 0.0)
    except ValueError:
        log.warning("%s=%r is not a number of minutes; checking every %s", ENVIRONMENT, text, DEFAULT_MINUTES)
        return DEFAULT_MINUTES


def check_all(platform: Platform) -> int:
    """Check every study with a version in force; returns the crossings recorded. A failing study is logged."""
    with platform.engine.connect() as connection:
        studies = sorted({v.study_id for v in list_versions(connection) if v.in_force})
    recorded = 0
    for study_id in studies:
        try:
            recorded += sum(check_studies(platform.engine, platform.unit_of_work, [study_id]).values())
        except Exception:  # one study's problem must not stop the others; the next period tries again
            log.exception("KRI check of study %s failed", study_id)
    return recorded


class KriChecker:
    """A daemon thread that checks every `minutes` until stopped."""

    def __init__(self, platform: Platform, minutes: float) -> None:
        self.platform = platform
        self.period = minutes * 60
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="kri-check", daemon=True)

    def _run(self) -> None:
        while not self.stopping.wait(self.period):
            try:
                recorded = check_all(self.platform)
                if recorded:
                    log.info("KRI check recorded %d crossings", recorded)
            except Exception:
                log.exception("KRI check failed")

    def start(self) -> KriChecker:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)


def start_kri_checks(platform: Platform) -> KriChecker | None:
    """Start the periodic check unless the period is 0."""
    minutes = check_minutes()
    return KriChecker(platform, minutes).start() if minutes > 0 else None
