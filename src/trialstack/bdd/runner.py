"""Run a study's features against one StudyVersion, each scenario in a fresh throwaway ledger.

Isolation: the StudyVersion is published once into a template SQLite file in a temporary directory; every
scenario starts from its own byte copy of that file. A fresh database per scenario (rather than a fresh study
state in one shared database) is what makes scenarios independent of their order: subject numbers restart at
001, query numbers at 001, and no scenario can see another's subjects, locks or queries. Copying a migrated file
costs about 2 ms, far less than migrating, so isolation is almost free. The directory is removed after the run.

Everything is deterministic: the clock is fixed, correlation ids come from a generator seeded per scenario, so a
scenario writes the same ledger every time and its head hash can be compared across runs.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

import trialstack
from trialstack.bdd.coverage import Observations, coverage
from trialstack.bdd.errors import ExpectationFailed, ReferenceProblem
from trialstack.bdd.features import Feature, load_features
from trialstack.bdd.library import default_library
from trialstack.bdd.names import Names
from trialstack.bdd.registry import BoundScenario, BoundStep, StepLibrary
from trialstack.bdd.results import ERROR, FAILED, PASSED, SKIPPED, EventLine, RunResult, ScenarioResult, StepResult
from trialstack.bdd.world import World
from trialstack.bootstrap import Platform, bootstrap
from trialstack.capture.checks import rules_for
from trialstack.clock import FixedClock
from trialstack.errors import TrialStackError
from trialstack.ledger.envelope import Actor
from trialstack.ledger.schema import study_head
from trialstack.ledger.verify import verify_study
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import StudyVersion
from trialstack.settings import Settings

DEFAULT_SEED = 201
SCENARIO_START = datetime(2020, 1, 1, 9, 0, tzinfo=UTC)
"""Where each scenario's clock starts: before any date a scenario names, so the story can move it forward."""
STUDY_BUILDER = Actor("user:study-builder", "study_builder")


@dataclass(frozen=True)
class Specification:
    """The features of a study, parsed and bound to its StudyVersion: ready to run."""

    version: StudyVersion
    features: tuple[Feature, ...]
    scenarios: tuple[BoundScenario, ...]


def prepare(version: StudyVersion, features_dir: Path, library: StepLibrary | None = None) -> Specification:
    """Parse every feature and bind every step; SpecificationError lists each problem with file and line."""
    features = load_features(features_dir, relative_to=features_dir.parent)
    scenarios = [scenario for feature in features for scenario in feature.scenarios]
    bound = (library or default_library()).bind(scenarios, Names(version.definition))
    return Specification(version, tuple(features), tuple(bound))


def _platform(path: Path, *, migrate: bool = False) -> Platform:
    return bootstrap(Settings(database_url=f"sqlite:///{path}"), clock=FixedClock(SCENARIO_START), migrate=migrate)


def _template(directory: Path, version: StudyVersion) -> Path:
    """A migrated ledger holding only the StudyVersion under test."""
    path = directory / "template.db"
    platform = _platform(path, migrate=True)
    try:
        with platform.unit_of_work(STUDY_BUILDER, "bdd-publish") as uow:
            publish_study_version(uow, PublishStudyVersion(version, "yaml", "study under test"))
            uow.commit()
    finally:
        platform.close()
    return path


def run_specification(
    specification: Specification,
    *,
    seed: int = DEFAULT_SEED,
    on_scenario: Callable[[ScenarioResult], None] | None = None,
) -> RunResult:
    """Run every scenario in its own copy of a freshly published ledger; the results and what they covered."""
    version = specification.version
    started_at = datetime.now(UTC)
    clock_start = time.perf_counter()
    names = Names(version.definition)
    results: list[ScenarioResult] = []
    with tempfile.TemporaryDirectory(prefix="trialstack-bdd-") as scratch:
        template = _template(Path(scratch), version)
        for index, bound in enumerate(specification.scenarios, start=1):
            database = Path(scratch) / f"scenario-{index:04d}.db"
            shutil.copyfile(template, database)
            result = run_scenario(bound, database, names, version, seed)
            database.unlink(missing_ok=True)
            results.append(result)
            if on_scenario is not None:
                on_scenario(result)
    observed = Observations()
    for result in results:
        observed.merge(result.observed)
    definition = version.definition
    return RunResult(
        study_id=definition.study.id,
        study_name=definition.study.name,
        protocol_version=definition.study.protocol_version,
        version_hash=version.hash,
        trialstack_version=trialstack.__version__,
        seed=seed,
        started_at=started_at,
        seconds=time.perf_counter() - clock_start,
        scenarios=tuple(results),
        coverage=coverage(definition, observed),
    )


def run_scenario(
    bound: BoundScenario, database: Path, names: Names, version: StudyVersion, seed: int
) -> ScenarioResult:
    started = time.perf_counter()
    location = bound.scenario.location
    rng = random.Random(f"{seed}/{location.file}:{location.line}:{location.example_line}")
    platform = _platform(database)
    world = World(platform, names, rules_for(version), rng)
    try:
        steps = _run_steps(world, bound.steps)
        with platform.engine.connect() as connection:
            head = connection.execute(
                select(study_head.c.last_seq, study_head.c.last_hash).where(study_head.c.study_id == names.study_id)
            ).one()
            _count, broken = verify_study(connection, names.study_id)
    finally:
        platform.close()
    return ScenarioResult(
        bound.scenario, tuple(steps), time.perf_counter() - started, int(head[0]), str(head[1]), broken is None,
        world.observed,
    )  # fmt: skip


def _run_steps(world: World, steps: Iterable[BoundStep]) -> list[StepResult]:
    results: list[StepResult] = []
    stopped = False
    for bound in steps:
        if stopped:
            results.append(StepResult(bound.step, SKIPPED))
            continue
        if world.refusal is not None and not bound.definition.inspects_refusal:
            results[-1] = _unchecked_refusal(world, results[-1])
            results.append(StepResult(bound.step, SKIPPED))
            stopped = True
            continue
        result = _run_step(world, bound)
        results.append(result)
        stopped = result.status != PASSED
    if not stopped and world.refusal is not None and results:
        results[-1] = _unchecked_refusal(world, results[-1])
    return results


def _unchecked_refusal(world: World, refused: StepResult) -> StepResult:
    refusal = world.refusal
    world.refusal = None
    if refusal is None:
        return refused
    return StepResult(
        refused.step,
        FAILED,
        f"{refusal.what} was refused, and no step checks the refusal: {refusal.message}",
        expected=f"{refusal.what} accepted (or a following `Then the ... is refused with` step)",
        actual=f"refused ({refusal.code}): {refusal.message}",
        events=refused.events,
    )


def _run_step(world: World, bound: BoundStep) -> StepResult:
    step = bound.step
    world.step_kind = step.kind
    world.step_events = []
    try:
        if bound.definition.table is not None:
            bound.definition.function(world, *bound.args, table=step.table)
        else:
            bound.definition.function(world, *bound.args)
    except ExpectationFailed as failure:
        return StepResult(step, FAILED, failure.message, failure.expected, failure.actual, _events(world))
    except (ReferenceProblem, TrialStackError) as problem:
        return StepResult(step, ERROR, f"{step.location}: {problem.message}", events=_events(world))
    except Exception as crash:  # a defect in a step or the platform: reported, never a traceback for the team
        return StepResult(step, ERROR, f"{type(crash).__name__}: {crash}", events=_events(world))
    return StepResult(step, PASSED, events=_events(world))


def _events(world: World) -> tuple[EventLine, ...]:
    return tuple(EventLine.of(event) for event in world.step_events)
