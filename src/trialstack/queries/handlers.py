"""Query use cases, and the policies that turn edit-check results and reconciliation discrepancies into system
queries and close them again."""

from __future__ import annotations

from dataclasses import replace

from trialstack.capture import events as capture_events
from trialstack.errors import NotFound
from trialstack.ledger.envelope import SYSTEM_RULES, RecordedEvent
from trialstack.ledger.registry import decode, encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.ledger.wiring import ReactionContext
from trialstack.queries import commands as cmd
from trialstack.queries import events as ev
from trialstack.queries import model
from trialstack.queries.readmodel import count_for_subject, open_system_query, system_query_state
from trialstack.reconcile import events as reconcile_events

QUERY = "query"


def stream_id(study_id: str, query_id: str) -> str:
    return f"{study_id}/{query_id}"


def load_query(uow: ReactionContext, study_id: str, query_id: str) -> model.Query:
    state = model.Query(query_id)
    events = uow.read_stream(QUERY, stream_id(study_id, query_id))
    for recorded in events:
        payload = decode(recorded)
        if isinstance(payload, ev.QueryEvent):
            state = model.evolve(payload, state)
    if state.status is None:
        raise NotFound(f"query {query_id} does not exist in study {study_id}", field="query_id")
    return replace(state, version=len(events))


def _next_query_id(uow: ReactionContext, study_id: str, subject_id: str, count: int | None = None) -> str:
    """`Q-<subject>-<n>`: numbered per subject; skips numbers taken earlier in the same transaction.

    `count` is the subject's number of queries when the caller has already read it.
    """
    number = (count_for_subject(uow.connection, study_id, subject_id) if count is None else count) + 1
    while uow.stream_version(QUERY, stream_id(study_id, f"Q-{subject_id}-{number:03d}")) != 0:
        number += 1
    return f"Q-{subject_id}-{number:03d}"


def open_manual_query(uow: UnitOfWork, study_id: str, site_id: str, command: cmd.OpenQuery) -> list[RecordedEvent]:
    """A monitor or data manager raises a question on an item; the adapter has checked the subject's site."""
    query_id = _next_query_id(uow, study_id, command.subject_id)
    decided = model.open_query(query_id, command.subject_id, site_id, command, uow.clock.now().date().isoformat())
    return uow.append(study_id, QUERY, stream_id(study_id, query_id), [encode(e) for e in decided], expected_version=0)


def _act(
    uow: UnitOfWork, study_id: str, query_id: str, decided: list[ev.QueryEvent], version: int, reason: str | None = None
) -> list[RecordedEvent]:
    return uow.append(
        study_id, QUERY, stream_id(study_id, query_id), [encode(e, reason=reason) for e in decided],
        expected_version=version,
    )  # fmt: skip


def answer_query(uow: UnitOfWork, study_id: str, command: cmd.AnswerQuery) -> list[RecordedEvent]:
    state = load_query(uow, study_id, command.query_id)
    return _act(uow, study_id, command.query_id, model.answer(state, command), state.version)


def requery_query(uow: UnitOfWork, study_id: str, command: cmd.RequeryQuery) -> list[RecordedEvent]:
    state = load_query(uow, study_id, command.query_id)
    return _act(uow, study_id, command.query_id, model.requery(state, command), state.version)


def close_query(uow: UnitOfWork, study_id: str, command: cmd.CloseQuery) -> list[RecordedEvent]:
    state = load_query(uow, study_id, command.query_id)
    return _act(uow, study_id, command.query_id, model.close(state, command), state.version)


def cancel_query(uow: UnitOfWork, study_id: str, command: cmd.CancelQuery) -> list[RecordedEvent]:
    state = load_query(uow, study_id, command.query_id)
    return _act(uow, study_id, command.query_id, model.cancel(state, command), state.version, command.reason)


def on_edit_check_failed(event: RecordedEvent, uow: ReactionContext) -> None:
    """Policy: a failing edit check opens a system query on its item, unless one is already open."""
    failed = decode(event)
    if not isinstance(failed, capture_events.EditCheckFailed):
        return
    count, already_open = system_query_state(
        uow.connection, event.study_id, failed.subject_id, failed.form, failed.check_id
    )
    if already_open is not None:
        return
    query_id = _next_query_id(uow, event.study_id, failed.subject_id, count)
    opened = ev.QueryOpened(
        query_id=query_id,
        subject_id=failed.subject_id,
        site_id=failed.site_id,
        form=failed.form,
        item=failed.item,
        text=failed.message,
        check_id=failed.check_id,
        opened_on=event.occurred_at[:10],
    )
    uow.append(event.study_id, QUERY, stream_id(event.study_id, query_id), [encode(opened)], expected_version=0,
               actor=SYSTEM_RULES)  # fmt: skip


def on_edit_check_resolved(event: RecordedEvent, uow: ReactionContext) -> None:
    """Policy: when the check holds again after a correction, its system query closes itself."""
    resolved = decode(event)
    if not isinstance(resolved, capture_events.EditCheckResolved):
        return
    query_id = open_system_query(uow.connection, event.study_id, resolved.subject_id, resolved.form, resolved.check_id)
    if query_id is None:
        return
    state = load_query(uow, event.study_id, query_id)
    decided = model.close_automatically(state, f"Edit check {resolved.check_id} holds after the correction.")
    uow.append(event.study_id, QUERY, stream_id(event.study_id, query_id), [encode(e) for e in decided],
               expected_version=state.version, actor=SYSTEM_RULES)  # fmt: skip


def on_discrepancy_found(event: RecordedEvent, uow: ReactionContext) -> None:
    """Policy: a reconciliation discrepancy opens a system query (its check id is the discrepancy id) on the item
    it names, addressed to the role it names, unless one is already open."""
    found = decode(event)
    if not isinstance(found, reconcile_events.ReconciliationDiscrepancyFound):
        return
    count, already_open = system_query_state(
        uow.connection, event.study_id, found.subject_id, found.form, found.discrepancy_id
    )
    if already_open is not None:
        return
    query_id = _next_query_id(uow, event.study_id, found.subject_id, count)
    opened = ev.QueryOpened(
        query_id=query_id,
        subject_id=found.subject_id,
        site_id=found.site_id,
        form=found.form,
        item=found.item,
        text=found.detail,
        check_id=found.discrepancy_id,
        opened_on=event.occurred_at[:10],
        addressed_to=found.addressed_to.value,
    )
    uow.append(event.study_id, QUERY, stream_id(event.study_id, query_id), [encode(opened)], expected_version=0,
               actor=SYSTEM_RULES)  # fmt: skip


def on_discrepancy_resolved(event: RecordedEvent, uow: ReactionContext) -> None:
    """Policy: when the sources agree again (or the missing sample arrived), the discrepancy's query closes itself."""
    resolved = decode(event)
    if not isinstance(resolved, reconcile_events.ReconciliationDiscrepancyResolved):
        return
    query_id = open_system_query(uow.connection, event.study_id, resolved.subject_id, resolved.form,
                                 resolved.discrepancy_id)  # fmt: skip
    if query_id is None:
        return
    state = load_query(uow, event.study_id, query_id)
    decided = model.close_automatically(state, resolved.detail)
    uow.append(event.study_id, QUERY, stream_id(event.study_id, query_id), [encode(e) for e in decided],
               expected_version=state.version, actor=SYSTEM_RULES)  # fmt: skip


REACTORS = {
    capture_events.EditCheckFailed.__name__: on_edit_check_failed,
    capture_events.EditCheckResolved.__name__: on_edit_check_resolved,
    reconcile_events.ReconciliationDiscrepancyFound.__name__: on_discrepancy_found,
    reconcile_events.ReconciliationDiscrepancyResolved.__name__: on_discrepancy_resolved,
}
