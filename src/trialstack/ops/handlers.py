"""Ops use cases: check a study's KRIs and record every status that changed (KriThresholdCrossed).

`check_kris` is one command in the adapter's unit of work: the figures come from ops' read model as of the
clock's day, the last recorded statuses from the study's `ops` stream, and `model.decide_check` compares them, so a
crossing is recorded once. `trialstack ops kri-check`, the server's periodic check and the demo's daily one run it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from sqlalchemy import Engine

from trialstack.errors import NotFound
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.registry import decode, encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.ops import commands as cmd
from trialstack.ops import events as ev
from trialstack.ops.figures import study_figures
from trialstack.ops.model import KriWatch, decide_check, evolve
from trialstack.protocol.readmodel import list_versions, version_in_force

OPS = "ops"
SYSTEM_OPS = Actor(id="system:ops", role="system")


def stream_id(study_id: str) -> str:
    return f"{study_id}/kris"


def _fold(state: KriWatch, events: Sequence[RecordedEvent]) -> KriWatch:
    for recorded in events:
        payload = decode(recorded)
        if isinstance(payload, ev.OpsEvent):
            state = evolve(payload, state)
    return replace(state, version=events[-1].stream_version) if events else state


def load_watch(uow: UnitOfWork, study_id: str) -> KriWatch:
    return uow.load(OPS, stream_id(study_id), KriWatch(study_id), _fold)


def check_kris(uow: UnitOfWork, study_id: str, command: cmd.CheckKris | None = None) -> list[RecordedEvent]:
    """Record a KriThresholdCrossed for every KRI and site whose status changed (as of the clock's day)."""
    version = version_in_force(uow.connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    as_of = (command or cmd.CheckKris(uow.clock.now().date())).as_of
    state = load_watch(uow, study_id)
    decided = decide_check(state, study_figures(uow.connection, version.definition, study_id, as_of), as_of)
    if not decided:
        return []
    return uow.append(study_id, OPS, stream_id(study_id), [encode(e) for e in decided], expected_version=state.version)


def check_studies(
    engine: Engine, unit_of_work: Callable[[Actor], UnitOfWork], studies: Sequence[str] | None = None
) -> dict[str, int]:
    """Check the KRIs of `studies` (None: every study with a version in force), one unit of work each, as the
    system; returns the crossings recorded per study."""
    if studies is None:
        with engine.connect() as connection:
            studies = sorted({v.study_id for v in list_versions(connection) if v.in_force})
    recorded: dict[str, int] = {}
    for study_id in studies:
        with unit_of_work(SYSTEM_OPS) as uow:
            recorded[study_id] = len(check_kris(uow, study_id))
            uow.commit()
    return recorded
