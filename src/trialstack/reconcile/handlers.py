"""Reconcile's policy and its one command.

`reconcile_batch` is a batch reactor (`LedgerWiring.add_batch_reactor`): a lab import appends up to a million
results in one unit of work, flushed every thousand or so, so it reads the read model once per batch for every
subject the batch names (never once per event), folds the batch on top in memory and decides per subject.
`sweep_missing_samples` is a command, run by `trialstack reconcile sweep` and by the server every few minutes:
a sample becomes missing by the passing of time, which no event announces.

Every decided event is checked against its own stream before it is appended (the stream, not the read model,
sees what this transaction already appended), so a discrepancy is never raised twice while it is open.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import date

from sqlalchemy import Engine

from trialstack.capture.events import VisitDateRecorded
from trialstack.errors import NotFound
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.registry import encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.ledger.wiring import ReactionContext
from trialstack.protocol.readmodel import list_versions, version_in_force
from trialstack.reconcile import events as ev
from trialstack.reconcile import model
from trialstack.reconcile.commands import SweepMissingSamples
from trialstack.reconcile.readmodel import (
    FOLLOWED,
    ITEM_EVENTS,
    RESULT_EVENTS,
    ReconcileReadModel,
    form_and_item,
    load_samples,
    load_study,
    load_subjects,
    local_items,
    subject_states,
    subjects_with_lab_data,
)

RECONCILE = "reconcile"
SYSTEM_RECONCILE = Actor(id="system:reconcile", role="system")
REACTS_TO = FOLLOWED
"""The event types the policy is handed: results, local-lab values, visit dates, subject status and consent."""
_FOLD = ReconcileReadModel()


def stream_id(study_id: str, discrepancy_id: str) -> str:
    return f"{study_id}/{discrepancy_id}"


def _append(uow: ReactionContext, study_id: str, decided: Sequence[ev.DiscrepancyFields]) -> list[RecordedEvent]:
    """Append each decision its stream does not already hold (Found after Found, Resolved after Resolved)."""
    appended: list[RecordedEvent] = []
    for event in decided:
        stream = stream_id(study_id, event.discrepancy_id)
        history = uow.read_stream(RECONCILE, stream)
        if history and history[-1].event_type == type(event).__name__:
            continue
        if not history and isinstance(event, ev.ReconciliationDiscrepancyResolved):
            continue
        appended += uow.append(study_id, RECONCILE, stream, [encode(event)], expected_version=len(history),
                               actor=SYSTEM_RECONCILE)  # fmt: skip
    return appended


def reconcile_batch(events: Sequence[RecordedEvent], uow: ReactionContext) -> None:
    """Policy: re-check every subject a batch of results, local-lab values, visit dates, status or consent events
    names; raise the discrepancies found, resolve those that hold again. Each subject's reactions are caused by the
    last of its events in the batch."""
    by_study: dict[str, list[RecordedEvent]] = defaultdict(list)
    for event in events:
        by_study[event.study_id].append(event)
    for study_id, batch in by_study.items():
        with_results = {e.payload["subject_id"] for e in batch if e.event_type in RESULT_EVENTS}
        named = {e.payload["subject_id"] for e in batch} - with_results
        followed = with_results | subjects_with_lab_data(uow.connection, study_id, named)
        if not followed:
            continue  # no central result and no open discrepancy: nothing to check (most EDC saves)
        version = version_in_force(uow.connection, study_id)
        if version is None or version.definition.labs is None:
            continue
        definition = version.definition
        local = set(local_items(definition))
        relevant = [
            e for e in batch
            if e.payload["subject_id"] in followed
            and (e.event_type not in ITEM_EVENTS or form_and_item(e.payload["form"], e.payload["item"]) in local)
        ]  # fmt: skip
        causes = {e.payload["subject_id"]: e for e in relevant}
        if not causes:
            continue
        tests_of_item: dict[str, list[str]] = defaultdict(list)
        for test in version.definition.labs.tests:
            if test.local_item is not None:
                tests_of_item[test.local_item].append(test.id)
        all_tests = [test.id for test in version.definition.labs.tests]
        whole, scopes = _scopes(relevant, tests_of_item, definition.schedule.anchor, all_tests)
        rows = load_subjects(uow.connection, study_id, sorted(whole), definition)
        keyed = [(subject, visit, test) for subject, scope in scopes.items() for visit, test in scope]
        if keyed:
            rows.merge(load_samples(uow.connection, study_id, keyed, definition))
        for event in relevant:
            _FOLD.fold(event, rows)
        states = subject_states(rows)
        for subject_id, cause in sorted(causes.items()):
            state = states.get(subject_id)
            scope = None if subject_id in whole else scopes[subject_id]
            decided = model.decide(state, definition, version.hash, scope) if state is not None else []
            if decided:
                with uow.caused_by(cause):
                    _append(uow, study_id, decided)


def _scopes(
    events: Sequence[RecordedEvent], tests_of_item: Mapping[str, Sequence[str]], anchor: str, tests: Sequence[str]
) -> tuple[set[str], dict[str, set[tuple[str, str]]]]:
    """Which subjects must be re-checked whole (their status or consent changed, the anchor visit's date moved every
    window, or a result has no visit) and, for the others, which (visit, test) samples their results, local values
    and visit dates touch (a visit's date: every test of that visit, for its window)."""
    whole: set[str] = set()
    scopes: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for event in events:
        p = event.payload
        subject = p["subject_id"]
        if event.event_type in ITEM_EVENTS:
            visit = p["form"].rsplit(".", 1)[0] if "." in p["form"] else None
            tests = tests_of_item.get(form_and_item(p["form"], p["item"]), ())
            if visit is None:
                whole.add(subject)
            scopes[subject].update((visit, test) for test in tests if visit is not None)
        elif event.event_type in RESULT_EVENTS and p["visit"] is not None:
            scopes[subject].add((p["visit"], p["test"]))
        elif event.event_type == VisitDateRecorded.__name__ and p["visit"].split(".")[0] != anchor:
            scopes[subject].update((p["visit"], test) for test in tests)
        else:
            whole.add(subject)
    return whole, {subject: scope for subject, scope in scopes.items() if subject not in whole}


def sweep_missing_samples(uow: UnitOfWork, study_id: str, today: date) -> list[RecordedEvent]:
    """Raise a sample_missing discrepancy for each expected central sample overdue on `today`, and resolve those no
    longer overdue. Three reads for the whole study; a repeat on the same day appends nothing."""
    command = SweepMissingSamples(today)
    version = version_in_force(uow.connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    definition = version.definition
    if definition.labs is None or not definition.labs.expected.visits:
        return []
    states = subject_states(load_study(uow.connection, study_id, definition))
    appended: list[RecordedEvent] = []
    for state in states.values():
        decided = model.decide_missing(state, definition, version.hash, command.as_of)
        if decided:
            appended += _append(uow, study_id, decided)
    return appended


def sweep_studies(
    engine: Engine, unit_of_work: Callable[[Actor], UnitOfWork], today: date, studies: Sequence[str] | None = None
) -> dict[str, int]:
    """Sweep `studies` (None: every study with a version in force), one unit of work each, as the system; returns
    the discrepancy events appended per study (raised and resolved)."""
    if studies is None:
        with engine.connect() as connection:
            studies = sorted({v.study_id for v in list_versions(connection) if v.in_force})
    appended: dict[str, int] = {}
    for study_id in studies:
        with unit_of_work(SYSTEM_RECONCILE) as uow:
            appended[study_id] = len(sweep_missing_samples(uow, study_id, today))
            uow.commit()
    return appended
