"""Events of the bdd context: the one decision it records, publishing a StudyVersion past a failing gate."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from trialstack.ledger.registry import event_type

CONTEXT = "bdd"


class BddEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FailingScenario(BaseModel):
    """One scenario that did not pass: where it is written, the step that failed and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature: str
    scenario: str
    location: str
    step: str
    message: str


@event_type(CONTEXT)
class SpecificationGateOverridden(BddEvent):
    """A StudyVersion was published although its specification failed; `reason` (also the envelope's reason)
    says why someone accepted that, and `failing` lists what was accepted as failing."""

    study_id: str
    version_hash: str
    scenarios_run: int
    failing: list[FailingScenario]
    reason: str
    trialstack_version: str
