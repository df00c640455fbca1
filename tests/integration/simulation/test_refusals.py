"""The simulation carries on past a command the platform refuses (a domain rule), counting it by reason with the
unit of work rolled back; anything else is a bug and stops it (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.integration.capture.conftest import STUDY
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.errors import DomainRuleViolation, InvalidInput
from trialstack.ledger.envelope import Actor
from trialstack.ledger.schema import ledger_event
from trialstack.ledger.uow import UnitOfWork
from trialstack.simulation.simulator import Simulation, SimulationBug

SITE = Actor("user:cora", "study_coordinator")


def _events(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ledger_event)).scalar_one())


@pytest.fixture
def simulation(demo: Platform) -> Simulation:
    return Simulation(demo, STUDY, seed=1, subjects=1)


def test_a_refused_command_is_counted_by_reason_and_writes_nothing(demo: Platform, simulation: Simulation) -> None:
    screened = simulation._do(SITE, handlers.screen_subject, cmd.ScreenSubject("0101", "2026-01-05"))
    assert screened is not None and [e.event_type for e in screened] == ["SubjectScreened"]
    before = _events(demo)

    def screens_then_refuses(uow: UnitOfWork, study_id: str, command: cmd.EnrolSubject) -> None:
        handlers.screen_subject(uow, study_id, cmd.ScreenSubject("0101", "2026-01-05"))  # rolled back below
        handlers.enrol_subject(uow, study_id, command)

    for _ in range(2):
        refused = simulation._do(SITE, screens_then_refuses, cmd.EnrolSubject("0101-001", "2026-01-05"))
        assert refused is None
    assert _events(demo) == before
    ((reason, count),) = simulation.refusals.items()
    assert reason.startswith("screens_then_refuses: eligibility cannot be decided: criteria IN01") and count == 2
    assert simulation.stats["commands"] == 1


@pytest.mark.parametrize(
    ("error", "stops_as"),
    [(InvalidInput("SYSBP: 'abc' is not an integer", field="items.SYSBP"), SimulationBug), (KeyError("x"), KeyError)],
)
def test_any_other_error_stops_the_simulation(
    demo: Platform, simulation: Simulation, error: Exception, stops_as: type[Exception]
) -> None:
    def broken(uow: UnitOfWork, study_id: str, *args: Any) -> None:
        handlers.screen_subject(uow, study_id, cmd.ScreenSubject("0101", "2026-01-05"))  # rolled back
        raise error

    before = _events(demo)
    with pytest.raises(stops_as) as stopped:
        simulation._do(SITE, broken, cmd.LockCasebook("0101-001"))
    if stops_as is SimulationBug:
        assert "broken" in str(stopped.value) and "is not an integer" in str(stopped.value)
    assert not simulation.refusals and _events(demo) == before


def test_a_domain_rule_violation_is_a_refusal_not_a_bug(simulation: Simulation) -> None:
    def refuses(uow: UnitOfWork, study_id: str, command: cmd.LockCasebook) -> None:
        raise DomainRuleViolation(f"the casebook of {command.subject_id} is locked (2026-02-01)")

    assert simulation._do(SITE, refuses, cmd.LockCasebook("0101-007")) is None
    assert dict(simulation.refusals) == {"refuses: the casebook of <subject> is locked (<date>)": 1}
