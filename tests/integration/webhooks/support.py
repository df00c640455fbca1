"""Helpers for webhook tests: subscribe a receiver, append events through the capture handlers, deliver until
nothing is left to do, and what a subscription should receive."""

from __future__ import annotations

import time
from random import Random

from tests.integration.webhooks.receiver import Receiver
from trialstack.bootstrap import Platform
from trialstack.capture import commands as capture_cmd
from trialstack.capture import handlers as capture
from trialstack.clock import SystemClock
from trialstack.integration.webhooks import commands as cmd
from trialstack.integration.webhooks import handlers
from trialstack.integration.webhooks.delivery import Deliverer, DeliveryReport
from trialstack.integration.webhooks.model import receives
from trialstack.integration.webhooks.readmodel import subscription
from trialstack.integration.webhooks.settings import RetryPolicy
from trialstack.ledger import store
from trialstack.ledger.envelope import Actor

STUDY = "HTN-201"
HOSTS = ("127.0.0.1",)
ADMIN = Actor("user:ada", "admin")
COORDINATOR = Actor("user:cora", "study_coordinator")


def subscribe(
    platform: Platform, receiver: Receiver, event_types: tuple[str, ...] = ("*",), *, unblinded: bool = False
) -> str:
    """Subscribe the receiver (as an admin, through the handler) and give it the secret to verify with."""
    with platform.unit_of_work(ADMIN) as uow:
        made = handlers.subscribe(
            uow, STUDY, "ada", cmd.SubscribeWebhook(receiver.url, event_types, unblinded), allowed_hosts=HOSTS
        )
        uow.commit()
    receiver.secret = made.secret
    return made.subscription_id


def screen(platform: Platform, count: int, site_id: str = "0101") -> list[int]:
    """Screen `count` subjects at the site; returns the study_seqs appended."""
    seqs: list[int] = []
    for _ in range(count):
        with platform.unit_of_work(COORDINATOR) as uow:
            capture.screen_subject(uow, STUDY, capture_cmd.ScreenSubject(site_id, "2026-01-05"))
            seqs.extend(event.study_seq for event in uow.commit())
    return seqs


def deliverer(
    platform: Platform, *, attempts: int = 5, timeout: float = 2.0, base: float = 0.005, cap: float = 0.02
) -> Deliverer:
    """A deliverer with tiny backoffs, the real clock (signatures carry the time the receiver checks) and a seeded
    jitter."""
    policy = RetryPolicy(base_seconds=base, cap_seconds=cap, max_attempts=attempts, timeout_seconds=timeout)
    return Deliverer(platform.engine, platform.vault, policy=policy, clock=SystemClock(), rng=Random(7), hosts=HOSTS)


def drain(deliverer: Deliverer, seconds: float = 60.0) -> list[DeliveryReport]:
    """Passes until one finds nothing to do (no delivery, no failure, no retry waiting); fails after `seconds`."""
    reports: list[DeliveryReport] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        report = deliverer.run_once()
        reports.append(report)
        assert not [r.error for r in report.subscriptions if r.error], report
        if not any(r.changed or r.waiting or r.busy for r in report.subscriptions):
            return reports
        time.sleep(0.005)
    raise AssertionError(f"delivery did not settle within {seconds} s: {reports[-1]}")


def expected_seqs(platform: Platform, subscription_id: str, after: int | None = None) -> list[int]:
    """The study_seqs the subscription receives after its start (or after `after`), in order."""
    with platform.engine.connect() as connection:
        sub = subscription(connection, STUDY, subscription_id)
        assert sub is not None
        events = store.read_study(connection, STUDY, sub.start_after if after is None else after, 100_000)
    return [e.study_seq for e in events if receives(sub.event_types, sub.blinded, e.event_type)]
