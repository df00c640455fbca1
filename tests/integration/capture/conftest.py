"""The demo study published on a fresh platform (SQLite and PostgreSQL), and helpers to act as site staff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from tests.conftest import REPO_ROOT
from tests.consenting import consent_on_paper
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.handlers import Outcome
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import StudyVersion, study_version
from trialstack.standards.loader import load_study_file

STUDY = "HTN-201"
COORDINATOR = Actor("user:cora", "study_coordinator")
MONITOR = Actor("user:mona", "monitor")
DATA_MANAGER = Actor("user:dan", "data_manager")
T = TypeVar("T")


@pytest.fixture(scope="session")
def demo_definition() -> StudyDefinition:
    return load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")


@pytest.fixture(scope="session")
def demo_version(demo_definition: StudyDefinition) -> StudyVersion:
    return study_version(demo_definition)


@pytest.fixture
def demo(platform: Platform, demo_version: StudyVersion) -> Platform:
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(demo_version, "yaml", "study.yaml"))
        uow.commit()
    return platform


class Site:
    """Runs handlers as one actor, one committed unit of work per call, as the API does."""

    def __init__(self, platform: Platform, actor: Actor) -> None:
        self.platform = platform
        self.actor = actor
        self.committed: list[RecordedEvent] = []

    def run(self, handler: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.platform.unit_of_work(self.actor) as uow:
            result = handler(uow, *args, **kwargs)
            self.committed = uow.commit()
        return result

    def outcome(self, handler: Callable[..., Outcome], *args: Any, **kwargs: Any) -> Outcome:
        return self.run(handler, *args, **kwargs)

    def screen(self, site_id: str = "0101", on: str = "2026-01-05") -> str:
        """Screen a subject, then record their consent signed on paper that day (the demo study gates data on it)."""
        subject = self.outcome(handlers.screen_subject, STUDY, cmd.ScreenSubject(site_id, on)).subject_id
        assert subject is not None
        consent_on_paper(self.platform, STUDY, subject, on)
        return subject


def event_types(events: list[RecordedEvent]) -> list[str]:
    return [e.event_type for e in events]


def unit_of_work(platform: Platform, actor: Actor) -> UnitOfWork:
    return platform.unit_of_work(actor)
