"""The release gate: a StudyVersion whose specification fails is not published, unless someone says why.

`trialstack study load` calls `run_gate` for a study file with a `features/` directory beside it. A failing (or
unrunnable) specification refuses the publication; `--override-gate --reason` publishes anyway and
`record_override` writes `SpecificationGateOverridden` in the same unit of work as `StudyVersionPublished`, so the
study's own hash chain says which scenarios were failing when that version went live, and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trialstack
from trialstack.bdd.errors import SpecificationError
from trialstack.bdd.events import FailingScenario, SpecificationGateOverridden
from trialstack.bdd.results import RunResult, ScenarioResult
from trialstack.bdd.runner import prepare, run_specification
from trialstack.errors import InvalidInput
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.version import StudyVersion

STREAM_TYPE = "specification"


@dataclass(frozen=True)
class GateResult:
    features_dir: Path
    version_hash: str
    run: RunResult | None = None
    problem: SpecificationError | None = None
    """Set when the features could not run at all (syntax error, unknown step, unknown name)."""

    @property
    def passed(self) -> bool:
        return self.problem is None and self.run is not None and self.run.passed

    @property
    def scenarios_run(self) -> int:
        return len(self.run.scenarios) if self.run is not None else 0

    def failing(self) -> list[FailingScenario]:
        if self.problem is not None:
            return [
                FailingScenario(
                    feature="(specification)",
                    scenario="(could not run)",
                    location=str(problem.location or self.features_dir),
                    step="",
                    message=problem.message,
                )
                for problem in self.problem.problems
            ]
        failing: list[FailingScenario] = []
        for result in self.run.failures if self.run is not None else []:
            failure = result.failure
            failing.append(
                FailingScenario(
                    feature=result.scenario.feature,
                    scenario=result.scenario.name,
                    location=str(failure.step.location if failure else result.scenario.location),
                    step=str(failure.step) if failure else "",
                    message=failure.message if failure else result.status,
                )
            )
        return failing


def features_beside(study_file: Path) -> Path | None:
    """The `features/` directory next to a study file (or inside a study directory), if it holds any feature."""
    directory = study_file if study_file.is_dir() else study_file.parent
    features = directory / "features"
    return features if features.is_dir() and any(features.rglob("*.feature")) else None


def run_gate(
    study_file: Path, version: StudyVersion, on_scenario: Callable[[ScenarioResult], None] | None = None
) -> GateResult | None:
    """Run the study's features against `version`; None when the study has no features."""
    features = features_beside(study_file)
    if features is None:
        return None
    try:
        specification = prepare(version, features)
    except SpecificationError as problem:
        return GateResult(features, version.hash, problem=problem)
    return GateResult(features, version.hash, run=run_specification(specification, on_scenario=on_scenario))


def record_override(uow: UnitOfWork, gate: GateResult, study_id: str, reason: str | None) -> list[RecordedEvent]:
    """Append SpecificationGateOverridden to the study's chain (the caller commits, with the publication)."""
    if not reason or not reason.strip():
        raise InvalidInput("overriding the specification gate needs --reason", field="reason")
    event = SpecificationGateOverridden(
        study_id=study_id,
        version_hash=gate.version_hash,
        scenarios_run=gate.scenarios_run,
        failing=gate.failing(),
        reason=reason.strip(),
        trialstack_version=trialstack.__version__,
    )
    version = uow.stream_version(STREAM_TYPE, study_id)
    return uow.append(study_id, STREAM_TYPE, study_id, [encode(event, reason=reason.strip())], expected_version=version)
