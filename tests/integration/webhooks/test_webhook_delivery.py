"""Webhook delivery on SQLite and PostgreSQL, to receivers on 127.0.0.1 that verify every signature with the
`standardwebhooks` library: order under retries, dead letters and their replay, independence of subscriptions,
replay from a position, one delivery in flight per subscription, and disabled subscriptions."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from tests.integration.webhooks.receiver import Receiver, always, fails_first, never_answers
from tests.integration.webhooks.support import STUDY, deliverer, drain, expected_seqs, screen, subscribe
from trialstack.bootstrap import Platform
from trialstack.errors import InvalidInput
from trialstack.integration.webhooks import commands as cmd
from trialstack.integration.webhooks import delivery, handlers
from trialstack.integration.webhooks.model import WebhookRefused
from trialstack.integration.webhooks.readmodel import SubscriptionRow, subscription
from trialstack.ledger import store
from trialstack.ledger.database import WRITE_OPTION
from trialstack.ledger.envelope import Actor
from trialstack.ledger.schema import webhook_delivery

Receivers = Callable[..., Receiver]


def _sub(platform: Platform, subscription_id: str) -> SubscriptionRow:
    with platform.engine.connect() as connection:
        found = subscription(connection, STUDY, subscription_id)
    assert found is not None
    return found


def _status(platform: Platform, subscription_id: str) -> dict[str, Any]:
    with platform.engine.connect() as connection:
        return delivery.delivery_status(connection, _sub(platform, subscription_id))


def _replay(platform: Platform, subscription_id: str, *, seqs: list[int] | None = None, from_seq: int | None = None
            ) -> list[int] | int:  # fmt: skip
    with platform.engine.connect().execution_options(**{WRITE_OPTION: True}) as connection, connection.begin():
        if from_seq is not None:
            return delivery.replay_from(connection, STUDY, subscription_id, from_seq)
        return delivery.replay_dead_letters(connection, STUDY, subscription_id, seqs, "user:ada", "2026-01-05")


def test_a_receiver_that_fails_twice_then_succeeds_gets_every_event_once_in_order(
    loaded: Platform, receivers: Receivers
) -> None:
    flaky = receivers(fails_first(2))
    steady = receivers(always())
    flaky_id = subscribe(loaded, flaky)
    steady_id = subscribe(loaded, steady)
    screen(loaded, 3)
    drain(deliverer(loaded, attempts=5))

    wanted = expected_seqs(loaded, flaky_id)
    assert len(wanted) >= 3
    assert flaky.accepted_seqs() == wanted  # every event once, in study order
    attempted = flaky.attempted_seqs()
    assert attempted == sorted(attempted), "an event was tried before the one before it was delivered"
    assert Counter(attempted) == dict.fromkeys(wanted, 3)  # two failures, then the delivery
    assert flaky.all_verified() and steady.all_verified()
    assert steady.accepted_seqs() == expected_seqs(loaded, steady_id)
    status = _status(loaded, flaky_id)
    assert status["position"] == wanted[-1] and status["dead_letters"] == 0 and status["retrying_seq"] is None
    first = flaky.accepted[0]
    assert first.payload is not None and first.webhook_id == f"evt_{first.payload['data']['hash']}"
    assert {r.webhook_id for r in flaky.requests if r.study_seq == first.study_seq} == {first.webhook_id}


def test_a_failing_or_silent_receiver_is_retried_then_dead_lettered_and_replayed_once_it_recovers(
    loaded: Platform, receivers: Receivers
) -> None:
    failing = receivers(always(500))
    silent = receivers(never_answers(3.0))
    healthy = receivers(always())
    failing_id = subscribe(loaded, failing, ("SubjectScreened",))
    silent_id = subscribe(loaded, silent, ("SubjectScreened",))
    healthy_id = subscribe(loaded, healthy)
    screened = screen(loaded, 2)
    run = deliverer(loaded, attempts=2, timeout=0.3)

    first = {r.subscription_id: r for r in run.run_once().subscriptions}
    assert first[healthy_id].delivered == len(expected_seqs(loaded, healthy_id)) > 0  # not held up by the others
    assert first[failing_id].failed == 1 and first[failing_id].delivered == 0
    drain(run)

    wanted = expected_seqs(loaded, failing_id)
    assert len(wanted) == 2 and set(wanted) <= set(screened)
    assert healthy.accepted_seqs() == expected_seqs(loaded, healthy_id)
    for receiver, subscription_id, error in ((failing, failing_id, "HTTP 500 Internal Server Error"),
                                             (silent, silent_id, "no answer within 0.3 s")):  # fmt: skip
        assert receiver.accepted_seqs() == []
        assert receiver.attempted_seqs() == [wanted[0], wanted[0], wanted[1], wanted[1]]  # retried, in order
        with loaded.engine.connect() as connection:
            letters = delivery.dead_letters(connection, _sub(loaded, subscription_id))
        assert [(row["study_seq"], row["state"], row["attempts"], row["last_error"]) for row in letters] == [
            (seq, "dead", 2, error) for seq in wanted
        ]
        assert _status(loaded, subscription_id)["position"] >= wanted[-1]  # it moved on: nothing more is pending

    failing.behaviour = always()
    assert _replay(loaded, failing_id) == wanted
    more = screen(loaded, 1)
    drain(run)
    assert failing.accepted_seqs() == [*wanted, *[s for s in expected_seqs(loaded, failing_id) if s in more]]
    assert failing.all_verified()
    with loaded.engine.connect() as connection:
        rows = delivery.dead_letters(connection, _sub(loaded, failing_id), ("dead", "replaying", "delivered"))
    assert [row["state"] for row in rows] == ["delivered", "delivered"]
    with pytest.raises(WebhookRefused, match="was delivered"):
        _replay(loaded, failing_id, seqs=[wanted[0]])
    with pytest.raises(Exception, match="no dead letter at study_seq 1"):
        _replay(loaded, failing_id, seqs=[1])


def test_replay_from_a_position_sends_everything_from_there_again_in_order(
    loaded: Platform, receivers: Receivers
) -> None:
    receiver = receivers(always())
    subscription_id = subscribe(loaded, receiver)
    screen(loaded, 3)
    run = deliverer(loaded)
    drain(run)
    delivered = expected_seqs(loaded, subscription_id)
    assert receiver.accepted_seqs() == delivered
    start = delivered[len(delivered) // 2]
    with pytest.raises(InvalidInput, match=f"between 1 and {delivered[-1] + 1}"):
        _replay(loaded, subscription_id, from_seq=delivered[-1] + 2)
    assert _replay(loaded, subscription_id, from_seq=start) == delivered[-1]
    assert _status(loaded, subscription_id)["replay_from"] == start
    drain(run)
    assert receiver.accepted_seqs() == delivered + [seq for seq in delivered if seq >= start]
    assert _status(loaded, subscription_id)["position"] == delivered[-1]

    # from before the subscription was made: the study's history, as far as the subscription receives it
    _replay(loaded, subscription_id, from_seq=1)
    drain(run)
    history = expected_seqs(loaded, subscription_id, after=0)
    assert receiver.accepted_seqs()[-len(history) :] == history
    assert receiver.all_verified()


def test_one_delivery_in_flight_per_subscription_and_a_disabled_one_receives_nothing(
    loaded: Platform, receivers: Receivers
) -> None:
    receiver = receivers(always())
    subscription_id = subscribe(loaded, receiver)
    screen(loaded, 1)
    other = deliverer(loaded)
    first = deliverer(loaded)
    sub = _sub(loaded, subscription_id)
    assert first._claim(sub)  # another deliverer process holds the lease
    report = other.deliver_subscription(sub)
    assert report.busy and report.delivered == 0 and receiver.requests == []
    first._release(sub)
    assert other.deliver_subscription(sub).delivered == len(expected_seqs(loaded, subscription_id))

    with loaded.unit_of_work(Actor("user:ada", "admin")) as uow:
        handlers.disable(uow, STUDY, "ada", cmd.DisableWebhook(subscription_id, "receiver retired"))
        uow.commit()
    before = len(receiver.requests)
    screen(loaded, 1)
    drain(other)
    assert len(receiver.requests) == before
    assert _sub(loaded, subscription_id).status == "disabled"
    with pytest.raises(WebhookRefused, match="is disabled"):
        _replay(loaded, subscription_id, from_seq=1)
    with loaded.engine.connect() as connection:
        lease = connection.execute(select(webhook_delivery.c.lease_owner)).scalars().all()
    assert lease == [None]


def test_a_host_taken_off_the_allowed_list_is_not_called(loaded: Platform, receivers: Receivers) -> None:
    receiver = receivers(always())
    subscription_id = subscribe(loaded, receiver, ("SubjectScreened",))
    screen(loaded, 1)
    run = deliverer(loaded, attempts=1)
    run.hosts = ("localhost",)
    drain(run)
    assert receiver.requests == []
    with loaded.engine.connect() as connection:
        letters = delivery.dead_letters(connection, _sub(loaded, subscription_id))
    assert len(letters) == 1 and "is not in the allowed hosts (localhost)" in letters[0]["last_error"]
    with loaded.engine.connect() as connection:
        assert store.count_events(connection, STUDY) > 0


def test_the_deliverer_runs_until_stopped_and_delivers_what_arrives_meanwhile(
    loaded: Platform, receivers: Receivers
) -> None:
    receiver = receivers(always())
    subscription_id = subscribe(loaded, receiver)
    run = deliverer(loaded)
    stop = threading.Event()
    reports: list[delivery.SubscriptionReport] = []
    thread = threading.Thread(target=run.run, args=(stop, 0.01, reports.append), daemon=True)
    thread.start()
    try:
        screen(loaded, 2)
        wanted = expected_seqs(loaded, subscription_id)
        deadline = time.monotonic() + 30
        while receiver.accepted_seqs() != wanted and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert receiver.accepted_seqs() == wanted and receiver.all_verified()
    assert sum(report.delivered for report in reports) == len(wanted)
