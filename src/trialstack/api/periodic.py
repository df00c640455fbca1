"""Work the server repeats for every loaded study on a timer: the eCOA sweep, the KRI check, the missing-sample
sweep. Each runs in a daemon thread (the event loop is never blocked), first one period after start; its period
comes from an environment variable in minutes (0 turns it off; a value that is not a number is logged and the
default used). One study's failure is logged and the others still run; the next period tries again. Each has a
CLI command that does the same once, by hand or from cron.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from trialstack.bootstrap import Platform
from trialstack.protocol.readmodel import list_versions

StudyWork = Callable[[Platform, str], int]
"""One study's run: returns how many events it appended."""


@dataclass(frozen=True)
class PeriodicWork:
    name: str
    """What the logs call it: "KRI check", "eCOA sweep"."""
    environment: str
    default_minutes: float
    run: StudyWork

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"trialstack.periodic.{self.name.replace(' ', '_').lower()}")

    def minutes(self) -> float:
        text = os.environ.get(self.environment, "").strip()
        if not text:
            return self.default_minutes
        try:
            return max(float(text), 0.0)
        except ValueError:
            self.log.warning("%s=%r is not a number of minutes; running the %s every %s minutes",
                             self.environment, text, self.name, self.default_minutes)  # fmt: skip
            return self.default_minutes

    def run_all(self, platform: Platform) -> int:
        """Every study with a version in force, one after the other; the events appended."""
        with platform.engine.connect() as connection:
            studies = sorted({v.study_id for v in list_versions(connection) if v.in_force})
        appended = 0
        for study_id in studies:
            try:
                appended += self.run(platform, study_id)
            except Exception:  # one study's problem must not stop the others; the next period tries again
                self.log.exception("%s of study %s failed", self.name, study_id)
        return appended


class PeriodicThread:
    """A daemon thread that runs `work` every `minutes` until stopped."""

    def __init__(self, platform: Platform, work: PeriodicWork, minutes: float) -> None:
        self.platform, self.work, self.period = platform, work, minutes * 60
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=work.name.replace(" ", "-").lower(), daemon=True)

    def _run(self) -> None:
        while not self.stopping.wait(self.period):
            try:
                appended = self.work.run_all(self.platform)
                if appended:
                    self.work.log.info("%s appended %d events", self.work.name, appended)
            except Exception:
                self.work.log.exception("%s failed", self.work.name)

    def start(self) -> PeriodicThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)


def start_periodic(platform: Platform, work: PeriodicWork) -> PeriodicThread | None:
    """Start the work's thread unless its period is 0."""
    minutes = work.minutes()
    return PeriodicThread(platform, work, minutes).start() if minutes > 0 else None
