"""Steps about edit checks and data clarifications (queries): what fired, what is open, and the query workflow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from trialstack.bdd.errors import ExpectationFailed, ReferenceProblem
from trialstack.bdd.registry import LIBRARY
from trialstack.bdd.world import World
from trialstack.capture.checks import CheckResult
from trialstack.capture.refs import FormKey
from trialstack.identity.policy import Action
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.symbols import VISIT_DATE
from trialstack.queries import commands as qcmd
from trialstack.queries import handlers as queries

CHECKS = "Edit checks"
QUERIES = "Queries"
step = LIBRARY.step
LIVE = ("open", "answered")
C = TypeVar("C")


def _results_text(results: list[CheckResult]) -> str:
    if not results:
        return "the last action evaluated no check"
    words = {True: "passes", False: "fails", None: "unknown"}
    return "; ".join(f"{r.check_id} {words[r.result]} on {r.form}" for r in results)


def _evaluated(world: World, check_id: str, expected: str) -> list[CheckResult]:
    results = [r for r in world.last_checks if r.check_id == check_id]
    if not results:
        raise ExpectationFailed(
            f"the last action did not evaluate {check_id}",
            expected=f"{check_id} {expected}",
            actual=_results_text(world.last_checks),
        )
    return results


@step("the check {check} fails", example='Then the check "VS-SBP-ELIG" fails', topic=CHECKS)
def check_fails(world: World, check_id: str) -> None:
    """The last action evaluated the check and it failed (a blocking check that refused the save fails too)."""
    results = _evaluated(world, check_id, "fails")
    if not any(r.result is False for r in results):
        raise ExpectationFailed(
            f"{check_id} does not fail", expected=f"{check_id} fails", actual=_results_text(results)
        )


@step("the check {check} passes", example='Then the check "VS-SBP-ELIG" passes', topic=CHECKS)
def check_passes(world: World, check_id: str) -> None:
    """The last action evaluated the check and it held on every form it ran on."""
    results = _evaluated(world, check_id, "passes")
    if not all(r.result is True for r in results):
        raise ExpectationFailed(
            f"{check_id} does not pass", expected=f"{check_id} passes", actual=_results_text(results)
        )


@step(
    "the check {check} cannot be evaluated yet",
    example='Then the check "VS-BMI-PLAUSIBLE" cannot be evaluated yet',
    topic=CHECKS,
)
def check_unknown(world: World, check_id: str) -> None:
    """The check reads a value that is missing, so it is unknown and raises no query (three-valued logic)."""
    results = [r for r in world.last_checks if r.check_id == check_id]
    if any(r.result is not None for r in results):
        raise ExpectationFailed(
            f"{check_id} was evaluated", expected=f"{check_id} unknown", actual=_results_text(results)
        )


def _find(world: World, reference: str) -> list[dict[str, Any]]:
    """The subject's queries raised by a check (newest last), or the one query with this id."""
    key = "query_id" if reference.startswith("Q-") else "check_id"
    return [q for q in world.queries() if q[key] == reference]


def _latest(world: World, reference: str) -> dict[str, Any]:
    found = _find(world, reference)
    if not found:
        raise ExpectationFailed(
            f"no query {reference} for subject {world.subject}",
            expected=f"a query {reference}",
            actual=_queries_text(world.queries()),
        )
    live = [q for q in found if q["status"] in LIVE]
    return (live or found)[-1]


def _queries_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no query"
    return "; ".join(
        f"{q['query_id']} {q['check_id'] or 'manual'} {q['status']} on {q['form']} {q['item']}" for q in rows
    )


def _item_id(world: World, form: str, text: str) -> str:
    if text.strip().replace(" ", "_").upper() == VISIT_DATE:
        return VISIT_DATE
    if "." not in form:
        raise ReferenceProblem(f'"{text}" on visit {form}: a window query sits on the visit date')
    return world.names.item(FormKey.parse(form).form_id, text).id


@step("query {query} is open on {item}", example='Then query "VS-SBP-ELIG" is open on SYSBP', topic=QUERIES)
def query_open_on(world: World, reference: str, item: str) -> None:
    """A query (by its edit check or its id) is open on this item of the subject's casebook."""
    found = _find(world, reference)
    if not any(q["status"] == "open" and q["item"] == _item_id(world, q["form"], item) for q in found):
        raise ExpectationFailed(
            f"no open query {reference} on {item}",
            expected=f"query {reference} open on {item}",
            actual=_queries_text(world.queries()),
        )


@step("query {query} is {query_status}", example='Then query "VS-SBP-ELIG" is closed', topic=QUERIES)
def query_status(world: World, reference: str, status: str) -> None:
    """The latest query of that check (or with that id) is open, answered, closed or cancelled."""
    query = _latest(world, reference)
    if query["status"] != status:
        raise ExpectationFailed(
            f"query {query['query_id']} is {query['status']}",
            expected=status,
            actual=_queries_text(_find(world, reference)),
        )


@step("no query is open on {item}", example="Then no query is open on SYSBP", topic=QUERIES)
def no_query_on(world: World, item: str) -> None:
    """No open or answered query sits on this item of the form the scenario last worked on."""
    form = world.require_form()
    item_id = world.names.item(form.form_id, item).id
    rows = [q for q in world.queries() if q["status"] in LIVE and q["form"] == str(form) and q["item"] == item_id]
    if rows:
        raise ExpectationFailed(
            f"a query is open on {item_id} of {form}", expected="no open query", actual=_queries_text(rows)
        )


@step("no query is open", example="Then no query is open", topic=QUERIES)
def no_query(world: World) -> None:
    """No open or answered query anywhere in the subject's casebook."""
    rows = [q for q in world.queries() if q["status"] in LIVE]
    if rows:
        raise ExpectationFailed("queries are open", expected="no open query", actual=_queries_text(rows))


def _act(
    world: World, who: str, action: Action, what: str, handler: Callable[[UnitOfWork, str, C], object], command: C
) -> None:
    world.command(who, action, what, lambda uow: handler(uow, world.study_id, command))


@step(
    "the {actor} answers query {query} with {string}",
    example='When the coordinator answers query "VS-SBP-ELIG" with "Value confirmed against the source."',
    topic=QUERIES,
)
def answer(world: World, who: str, reference: str, text: str) -> None:
    """Site staff answer the query (the latest open one of that check, or the one with that id)."""
    query_id = _latest(world, reference)["query_id"]
    _act(
        world,
        who,
        Action.QUERY_ANSWER,
        f"the answer to {query_id}",
        queries.answer_query,
        qcmd.AnswerQuery(query_id, text),
    )


@step(
    "the {actor} re-queries {query} with {string}",
    example='When the monitor re-queries "VS-SBP-ELIG" with "Please attach the vital signs worksheet."',
    topic=QUERIES,
)
def requery(world: World, who: str, reference: str, text: str) -> None:
    """A monitor or data manager is not satisfied with the answer and asks again."""
    query_id = _latest(world, reference)["query_id"]
    _act(
        world,
        who,
        Action.QUERY_OPEN,
        f"the re-query of {query_id}",
        queries.requery_query,
        qcmd.RequeryQuery(query_id, text),
    )


@step(
    "the {actor} closes query {query} with {string}",
    example='When the data manager closes query "VS-SBP-ELIG" with "Confirmed with the site."',
    topic=QUERIES,
)
def close(world: World, who: str, reference: str, resolution: str) -> None:
    """A monitor or data manager closes the query with a resolution."""
    query_id = _latest(world, reference)["query_id"]
    _act(
        world,
        who,
        Action.QUERY_CLOSE,
        f"the closing of {query_id}",
        queries.close_query,
        qcmd.CloseQuery(query_id, resolution),
    )


@step(
    "the {actor} cancels query {query} because {string}",
    example='When the data manager cancels query "Q-0101-001-001" because "raised on the wrong subject"',
    topic=QUERIES,
)
def cancel(world: World, who: str, reference: str, reason: str) -> None:
    """A query raised in error is cancelled, with the reason."""
    query_id = _latest(world, reference)["query_id"]
    _act(
        world,
        who,
        Action.QUERY_CLOSE,
        f"the cancelling of {query_id}",
        queries.cancel_query,
        qcmd.CancelQuery(query_id, reason),
    )


@step(
    "the {actor} raises a query on {item} on {form} saying {string}",
    example='When the monitor raises a query on PULSE on the "Screening" vital signs saying "Source says 78?"',
    topic=QUERIES,
)
def raise_query(world: World, who: str, item: str, key: FormKey, text: str) -> None:
    """A monitor or data manager opens a manual query on an item (it gets the next query id of the subject)."""
    subject = world.require_subject()
    item_id = world.names.item(key.form_id, item).id
    site = world.casebook().site_id
    world.form = key
    command = qcmd.OpenQuery(subject, str(key), item_id, text)
    world.command(
        who,
        Action.QUERY_OPEN,
        f"the query on {item_id}",
        lambda uow: queries.open_manual_query(uow, world.study_id, site, command),
        site=site,
    )
