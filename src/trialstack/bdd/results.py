"""What a run produced: per step, per scenario and for the whole run; what every report renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from trialstack.bdd.coverage import Coverage, Observations
from trialstack.bdd.features import Scenario, Step
from trialstack.ledger.envelope import RecordedEvent

PASSED = "passed"
FAILED = "failed"
ERROR = "error"
SKIPPED = "skipped"


@dataclass(frozen=True)
class EventLine:
    """One event, as a failure report shows it: type, stream, who, and the payload as stored."""

    study_seq: int
    event_type: str
    stream: str
    actor: str
    payload: str
    reason: str | None = None

    @classmethod
    def of(cls, event: RecordedEvent) -> EventLine:
        return cls(
            event.study_seq,
            event.event_type,
            f"{event.stream_type}:{event.stream_id}",
            event.actor_id,
            event.payload_json,
            event.reason,
        )

    def __str__(self) -> str:
        why = f" reason={self.reason!r}" if self.reason else ""
        return f"#{self.study_seq} {self.event_type} [{self.stream}] by {self.actor}{why} {self.payload}"


@dataclass(frozen=True)
class StepResult:
    step: Step
    status: str
    message: str = ""
    expected: str = ""
    actual: str = ""
    events: tuple[EventLine, ...] = ()


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario
    steps: tuple[StepResult, ...]
    seconds: float
    ledger_events: int = 0
    ledger_head: str = ""
    chain_verified: bool = False
    observed: Observations = field(default_factory=Observations)

    @property
    def status(self) -> str:
        statuses = {step.status for step in self.steps}
        return ERROR if ERROR in statuses else FAILED if FAILED in statuses else PASSED

    @property
    def failure(self) -> StepResult | None:
        return next((step for step in self.steps if step.status in (FAILED, ERROR)), None)

    @property
    def action_events(self) -> tuple[EventLine, ...]:
        """Events of the failing step, else of the last step before it that wrote any (the action under test)."""
        failure = self.failure
        if failure is None:
            return ()
        index = self.steps.index(failure)
        for step in reversed(self.steps[: index + 1]):
            if step.events:
                return step.events
        return ()


@dataclass(frozen=True)
class RunResult:
    study_id: str
    study_name: str
    protocol_version: str
    version_hash: str
    trialstack_version: str
    seed: int
    started_at: datetime
    seconds: float
    scenarios: tuple[ScenarioResult, ...]
    coverage: Coverage

    @property
    def passed(self) -> bool:
        return all(result.status == PASSED for result in self.scenarios)

    def count(self, status: str) -> int:
        return sum(1 for result in self.scenarios if result.status == status)

    @property
    def failures(self) -> list[ScenarioResult]:
        return [result for result in self.scenarios if result.status != PASSED]

    def by_file(self) -> dict[str, list[ScenarioResult]]:
        grouped: dict[str, list[ScenarioResult]] = {}
        for result in self.scenarios:
            grouped.setdefault(result.scenario.location.file, []).append(result)
        return grouped
