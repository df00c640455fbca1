"""The webhook deliverer: each subscription's events, in study order, signed per Standard Webhooks, at least once.

How it holds (docs/decisions/0012-webhooks.md):

- **Position.** `relay_position` (subscriber `webhook:<id>`) is the last study_seq the subscription is done with:
  delivered, left out by its filter or its blinding, or dead-lettered. Until it has a row, a subscription starts
  after its own WebhookSubscribed event (`start_after`).
- **Order.** A subscription has one head: the lowest dead letter asked to be replayed, else the first event after
  its position that it receives. Only the head is sent; the next one only when the head was delivered or
  dead-lettered. So a subscription never receives event N+1 before N was delivered or dead-lettered.
- **One in flight.** A lease on the subscription's `webhook_delivery` row (owner, expiry) is taken before sending
  and renewed before each attempt: two deliverer processes never send to one subscription at once.
- **Retries.** A failed attempt (no 2xx answer within the timeout, a redirect, a refused host) is retried after
  the policy's backoff with jitter; after `max_attempts` the event goes to `webhook_dead_letter` and the
  subscription moves on. A replay sends dead letters again, or everything from a position.
- **Independence.** Subscriptions are delivered by a pool of threads, each subscription on its own; a failing
  receiver holds one thread for at most one timeout per pass and then waits out its backoff without a thread.

Delivery is at least once: a crash between the receiver's answer and the acknowledgement sends the event again,
with the same `webhook-id` (receivers deduplicate on it).
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus
from random import Random
from typing import Any, Literal

import httpx
import orjson
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from standardwebhooks import Webhook

import trialstack
from trialstack.clock import Clock, SystemClock, utc_timestamp
from trialstack.errors import InvalidInput, NotFound, TrialStackError
from trialstack.integration.webhooks.handlers import reveal_secret
from trialstack.integration.webhooks.model import WebhookRefused, check_url, receives
from trialstack.integration.webhooks.readmodel import SubscriptionRow, subscription, subscriptions
from trialstack.integration.webhooks.settings import RetryPolicy, allowed_hosts
from trialstack.ledger import outbox, store
from trialstack.ledger.database import WRITE_OPTION
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.schema import relay_position, study_head, webhook_dead_letter, webhook_delivery
from trialstack.ledger.vault import Vault

DEAD = "dead"
REPLAYING = "replaying"
DELIVERED = "delivered"
PAGE = 500
LEASE_MARGIN = timedelta(seconds=60)
MAX_ERROR = 500
USER_AGENT = f"TrialStack-Webhooks/{trialstack.__version__}"
log = logging.getLogger("trialstack.webhooks")


# --- the message -----------------------------------------------------------------------------------------------


def message_id(event: RecordedEvent) -> str:
    """`webhook-id`: the same for every attempt and replay of one event, different for every event."""
    return f"evt_{event.hash}"


def message_body(event: RecordedEvent) -> bytes:
    """The body, as Standard Webhooks shapes it: `type`, `timestamp`, and the event (the API feed's fields, with
    the study and the ids that let a receiver follow causation) as `data`."""
    return orjson.dumps(
        {
            "type": event.event_type,
            "timestamp": event.recorded_at,
            "data": {
                "study_id": event.study_id,
                "study_seq": event.study_seq,
                "event_type": event.event_type,
                "schema_version": event.schema_version,
                "stream_type": event.stream_type,
                "stream_id": event.stream_id,
                "stream_version": event.stream_version,
                "payload": event.payload,
                "actor_id": event.actor_id,
                "actor_role": event.actor_role,
                "reason": event.reason,
                "occurred_at": event.occurred_at,
                "recorded_at": event.recorded_at,
                "correlation_id": event.correlation_id,
                "causation_id": event.causation_id,
                "hash": event.hash,
            },
        }
    )


def signed_headers(secret: str, event: RecordedEvent, body: bytes, clock: Clock) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` (this attempt, Unix seconds) and `webhook-signature` (`v1,<base64>`)."""
    moment = clock.now()
    identifier = message_id(event)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": identifier,
        "webhook-timestamp": str(math.floor(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(identifier, moment, body),
    }


# --- reports ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status: int | None
    error: str | None


@dataclass
class SubscriptionReport:
    study_id: str
    subscription_id: str
    delivered: int = 0
    skipped: int = 0
    """Events after the position the subscription does not receive (its filter, its blinding)."""
    failed: int = 0
    """Attempts that failed and will be retried."""
    dead_lettered: int = 0
    waiting: bool = False
    """A retry is not due yet."""
    busy: bool = False
    """Another deliverer holds the subscription's lease."""
    error: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.delivered or self.skipped or self.failed or self.dead_lettered or self.error)


@dataclass
class DeliveryReport:
    subscriptions: list[SubscriptionReport] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(int(getattr(report, name)) for report in self.subscriptions)


class _LeaseLost(Exception):
    """Another deliverer holds the subscription now (this one's lease expired)."""


@dataclass(frozen=True)
class _Head:
    event: RecordedEvent
    replay: bool
    attempts: int
    next_attempt_at: str | None


# --- reading delivery state ------------------------------------------------------------------------------------


def _key(table: Any, study_id: str, subscription_id: str) -> Any:
    return (table.c.study_id == study_id) & (table.c.subscription_id == subscription_id)


def _insert(connection: Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def _delivery_row(connection: Connection, sub: SubscriptionRow) -> dict[str, Any] | None:
    row = connection.execute(
        select(webhook_delivery).where(_key(webhook_delivery, sub.study_id, sub.subscription_id))
    ).first()
    return dict(row._mapping) if row is not None else None


def position(connection: Connection, sub: SubscriptionRow) -> int:
    """The last study_seq the subscription is done with (its `relay_position`, else where it started)."""
    stored = connection.execute(
        select(relay_position.c.last_seq).where(
            relay_position.c.subscriber == sub.subscriber, relay_position.c.study_id == sub.study_id
        )
    ).scalar()
    return int(stored) if stored is not None else sub.start_after


def _study_last_seq(connection: Connection, study_id: str) -> int:
    value = connection.execute(select(study_head.c.last_seq).where(study_head.c.study_id == study_id)).scalar()
    return int(value or 0)


def _first_replay(connection: Connection, sub: SubscriptionRow) -> int | None:
    value = connection.execute(
        select(func.min(webhook_dead_letter.c.study_seq)).where(
            _key(webhook_dead_letter, sub.study_id, sub.subscription_id), webhook_dead_letter.c.state == REPLAYING
        )
    ).scalar()
    return int(value) if value is not None else None


def delivery_status(connection: Connection, sub: SubscriptionRow) -> dict[str, Any]:
    """Where the subscription's delivery stands: position, events after it, the retry, dead letters by state."""
    row = _delivery_row(connection, sub) or {}
    counts: dict[str, int] = dict(
        connection.execute(
            select(webhook_dead_letter.c.state, func.count())
            .where(_key(webhook_dead_letter, sub.study_id, sub.subscription_id))
            .group_by(webhook_dead_letter.c.state)
        ).all()
    )
    at = position(connection, sub)
    return {
        "position": at,
        "behind": max(_study_last_seq(connection, sub.study_id) - at, 0),
        "retrying_seq": row.get("study_seq"),
        "attempts": row.get("attempts", 0),
        "next_attempt_at": row.get("next_attempt_at"),
        "last_attempt_at": row.get("last_attempt_at"),
        "last_status": row.get("last_status"),
        "last_error": row.get("last_error"),
        "delivered_seq": row.get("delivered_seq"),
        "delivered_at": row.get("delivered_at"),
        "replay_from": row.get("rewind_to"),
        "dead_letters": int(counts.get(DEAD, 0)),
        "replaying": int(counts.get(REPLAYING, 0)),
    }


def dead_letters(
    connection: Connection, sub: SubscriptionRow, states: Sequence[str] = (DEAD, REPLAYING)
) -> list[dict[str, Any]]:
    """The subscription's dead letters in the given states, in study order."""
    rows = connection.execute(
        select(webhook_dead_letter)
        .where(_key(webhook_dead_letter, sub.study_id, sub.subscription_id), webhook_dead_letter.c.state.in_(states))
        .order_by(webhook_dead_letter.c.study_seq)
    )
    return [dict(row._mapping) for row in rows]


# --- asking for a replay (CLI and API, inside the caller's transaction) ------------------------------------------


def _active(connection: Connection, study_id: str, subscription_id: str) -> SubscriptionRow:
    found = subscription(connection, study_id, subscription_id)
    if found is None:
        raise NotFound(f"webhook {subscription_id} not found in study {study_id}", field="subscription_id")
    if not found.active:
        raise WebhookRefused(
            f"webhook {subscription_id} is disabled: nothing is delivered to it", field="subscription_id"
        )
    return found


def replay_dead_letters(
    connection: Connection, study_id: str, subscription_id: str, seqs: Sequence[int] | None, by: str, at: str
) -> list[int]:
    """Ask for dead letters to be sent again (all dead ones when `seqs` is None), before any newer event; returns
    the study_seqs asked for. One that is not a dead letter of the subscription is refused, naming it."""
    sub = _active(connection, study_id, subscription_id)
    letters = {row["study_seq"]: row for row in dead_letters(connection, sub, (DEAD, REPLAYING, DELIVERED))}
    if seqs is None:
        wanted = sorted(seq for seq, row in letters.items() if row["state"] == DEAD)
    else:
        wanted = sorted(set(seqs))
        for seq in wanted:
            row = letters.get(seq)
            if row is None:
                raise NotFound(f"webhook {subscription_id} has no dead letter at study_seq {seq}", field="study_seq")
            if row["state"] == DELIVERED:
                raise WebhookRefused(
                    f"the dead letter at study_seq {seq} was delivered on {row['delivered_at']}: replay from a "
                    "position to send it again",
                    field="study_seq",
                )
    if wanted:
        connection.execute(
            webhook_dead_letter.update()
            .where(_key(webhook_dead_letter, study_id, subscription_id), webhook_dead_letter.c.study_seq.in_(wanted))
            .values(state=REPLAYING, replay_requested_by=by, replay_requested_at=at)
        )
    return wanted


def replay_from(connection: Connection, study_id: str, subscription_id: str, from_seq: int) -> int:
    """Ask for every event the subscription receives from `from_seq` on to be sent again, in order; the deliverer
    applies it under its lease. Returns the position it had. A position ahead of it is refused (that would skip)."""
    sub = _active(connection, study_id, subscription_id)
    current = position(connection, sub)
    if not 1 <= from_seq <= current + 1:
        raise InvalidInput(
            f"replay goes back: from_seq must be between 1 and {current + 1} (the subscription is done with "
            f"everything up to {current}), not {from_seq}",
            field="from_seq",
        )
    statement = _insert(connection)(webhook_delivery).values(
        study_id=study_id, subscription_id=subscription_id, attempts=0, rewind_to=from_seq
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["study_id", "subscription_id"], set_={"rewind_to": statement.excluded.rewind_to}
        )
    )
    return current


# --- the deliverer ---------------------------------------------------------------------------------------------


class Deliverer:
    """Delivers every active subscription's events: `run_once()` (one pass, `trialstack webhook deliver --once`)
    or `run(stop)` (until stopped). `clock` stamps and signs attempts and times the backoff; `rng` draws the
    jitter; `transport` lets tests swap the HTTP transport."""

    def __init__(
        self,
        engine: Engine,
        vault: Vault,
        *,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        rng: Random | None = None,
        hosts: Sequence[str] | None = None,
        workers: int = 8,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if workers < 1:
            raise InvalidInput(f"the deliverer needs at least one worker, not {workers}", field="workers")
        self.engine = engine
        self.vault = vault
        self.policy = policy or RetryPolicy.from_env()
        self.clock = clock or SystemClock()
        self.rng = rng or Random()
        self.hosts = tuple(hosts) if hosts is not None else allowed_hosts()
        self.workers = workers
        self.transport = transport
        self.owner = f"{uuid.uuid4().hex[:16]}"
        self.stopping = threading.Event()
        self._secrets: dict[tuple[str, str], str] = {}

    # -- passes --

    def active(self, study_id: str | None = None) -> list[SubscriptionRow]:
        with self.engine.connect() as connection:
            return subscriptions(connection, study_id, active_only=True)

    def run_once(self, study_id: str | None = None) -> DeliveryReport:
        """One pass: every active subscription (of `study_id`, or all) sends what is due now, concurrently."""
        found = self.active(study_id)
        if not found:
            return DeliveryReport()
        with ThreadPoolExecutor(max_workers=min(self.workers, len(found)), thread_name_prefix="webhook") as pool:
            return DeliveryReport(list(pool.map(self.deliver_subscription, found)))

    def run(
        self,
        stop: threading.Event,
        interval: float = 1.0,
        on_report: Callable[[SubscriptionReport], None] | None = None,
        study_id: str | None = None,
    ) -> None:
        """Deliver until `stop` is set: every `interval` seconds each subscription (of `study_id`, or all) with
        nothing in flight gets a pass of its own; a slow one never holds up the loop. On stop, passes end after
        their current attempt."""
        self.stopping = stop
        running: dict[tuple[str, str], Future[SubscriptionReport]] = {}
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="webhook") as pool:
            try:
                while not stop.is_set():
                    self._collect(running, on_report)
                    try:
                        found = self.active(study_id)
                    except Exception:  # the database may be back next time; the loop must outlive it
                        log.exception("webhook deliverer: listing subscriptions failed")
                        found = []
                    for sub in found:
                        key = (sub.study_id, sub.subscription_id)
                        if key not in running:
                            running[key] = pool.submit(self.deliver_subscription, sub)
                    stop.wait(interval)
            finally:
                stop.set()  # also on Ctrl-C: the passes end after their current attempt, then the pool closes
        self._collect(running, on_report)

    @staticmethod
    def _collect(
        running: dict[tuple[str, str], Future[SubscriptionReport]],
        on_report: Callable[[SubscriptionReport], None] | None,
    ) -> None:
        for key, future in list(running.items()):
            if future.done():
                del running[key]
                report = future.result()
                if on_report is not None and report.changed:
                    on_report(report)

    # -- one subscription --

    def deliver_subscription(self, sub: SubscriptionRow) -> SubscriptionReport:
        """Send the subscription's due events in order until none is due, one failure waits for its retry, or
        the deliverer stops. Never raises: a database error is logged and reported."""
        report = SubscriptionReport(sub.study_id, sub.subscription_id)
        try:
            self._deliver(sub, report)
        except Exception as error:  # one subscription's trouble must not stop the others
            log.exception("webhook %s of study %s: delivery failed", sub.subscription_id, sub.study_id)
            report.error = f"{type(error).__name__}: {error}"[:MAX_ERROR]
        return report

    def _deliver(self, sub: SubscriptionRow, report: SubscriptionReport) -> None:
        with self.engine.connect() as connection:
            due = self._due(connection, sub)
        if due != "due":
            report.waiting = due == "waiting"
            return
        if not self._claim(sub):
            report.busy = True
            return
        try:
            with self._client() as client:
                while not self.stopping.is_set():
                    with self._writing() as connection:
                        head = self._next(connection, sub, report)
                    if head is None:
                        return
                    if head.next_attempt_at is not None and head.next_attempt_at > self._now():
                        report.waiting = True
                        return
                    outcome = self._record(sub, head, self._attempt(client, sub, head.event))
                    if outcome == "delivered":
                        report.delivered += 1
                    elif outcome == "dead":
                        report.dead_lettered += 1
                    elif outcome == "retry":
                        report.failed += 1
                        return
                    else:
                        report.busy = True
                        return
        except _LeaseLost:
            report.busy = True
        finally:
            self._release(sub)

    def _now(self) -> str:
        return utc_timestamp(self.clock.now())

    def _due(self, connection: Connection, sub: SubscriptionRow) -> Literal["due", "waiting", "idle"]:
        """Whether the subscription has something to send now, only a retry not due yet, or nothing. Read without
        a lock: a cheap check before the lease is taken (the pass itself decides under the lease)."""
        row = _delivery_row(connection, sub) or {}
        if row.get("rewind_to") is not None:
            return "due"
        retrying, next_at = row.get("study_seq"), row.get("next_attempt_at")
        backing_off = next_at is not None and next_at > self._now()
        replay = _first_replay(connection, sub)
        if replay is not None:
            return "waiting" if retrying == replay and backing_off else "due"
        at = position(connection, sub)
        if at >= _study_last_seq(connection, sub.study_id):
            return "idle"
        if retrying is not None and retrying > at and backing_off:
            return "waiting"
        return "due"

    def _next(self, connection: Connection, sub: SubscriptionRow, report: SubscriptionReport) -> _Head | None:
        """The subscription's head (applying a requested replay from a position first); events it does not
        receive before the head are acknowledged as done. Renews the lease (_LeaseLost if another deliverer took
        it over: it expired)."""
        renewed = connection.execute(
            webhook_delivery.update().where(self._held(sub)).values(lease_until=self._lease_until())
        )
        if renewed.rowcount != 1:
            raise _LeaseLost(sub.subscription_id)
        current = subscription(connection, sub.study_id, sub.subscription_id)
        if current is None or not current.active:
            return None
        row = _delivery_row(connection, sub) or {}
        rewind = row.get("rewind_to")
        if rewind is not None:
            outbox.acknowledge(connection, sub.subscriber, sub.study_id, int(rewind) - 1)
            connection.execute(
                webhook_dead_letter.update()
                .where(
                    _key(webhook_dead_letter, sub.study_id, sub.subscription_id),
                    webhook_dead_letter.c.study_seq >= rewind,
                    webhook_dead_letter.c.state == REPLAYING,
                )
                .values(state=DEAD)
            )
            connection.execute(
                webhook_delivery.update()
                .where(_key(webhook_delivery, sub.study_id, sub.subscription_id))
                .values(rewind_to=None, study_seq=None, attempts=0, next_attempt_at=None)
            )
            row = {}
        head: RecordedEvent | None = None
        replay = _first_replay(connection, sub)
        if replay is not None:
            found = store.read_study(connection, sub.study_id, replay - 1, 1)
            if not found or found[0].study_seq != replay:
                raise NotFound(f"study {sub.study_id} has no event at study_seq {replay}")
            head = found[0]
        else:
            after = position(connection, sub)
            done: int | None = None
            while head is None:
                page = store.read_study(connection, sub.study_id, after, PAGE)
                if not page:
                    break
                for event in page:
                    if receives(sub.event_types, sub.blinded, event.event_type):
                        head = event
                        break
                    done = event.study_seq
                    report.skipped += 1
                after = page[-1].study_seq
            if done is not None:
                outbox.acknowledge(connection, sub.subscriber, sub.study_id, done)
        if head is None:
            return None
        if row.get("study_seq") == head.study_seq:
            return _Head(head, replay is not None, int(row.get("attempts") or 0), row.get("next_attempt_at"))
        return _Head(head, replay is not None, 0, None)

    def _secret(self, sub: SubscriptionRow) -> str | None:
        key = (sub.study_id, sub.subscription_id)
        if key not in self._secrets:
            with self.engine.connect() as connection:
                secret = reveal_secret(connection, self.vault, sub.study_id, sub.secret_ref)
            if secret is None:
                return None
            self._secrets[key] = secret
        return self._secrets[key]

    @contextmanager
    def _client(self) -> Iterator[httpx.Client]:
        with httpx.Client(
            timeout=httpx.Timeout(self.policy.timeout_seconds),
            follow_redirects=False,
            trust_env=False,
            transport=self.transport,
        ) as client:
            yield client

    def _attempt(self, client: httpx.Client, sub: SubscriptionRow, event: RecordedEvent) -> Attempt:
        """One POST of the event; a 2xx answer is a delivery, anything else (or none) a failure, said in words.

        What the receiver answered is kept as its status only, never its body or headers: the error is shown to
        anyone who manages the study's webhooks, and a receiver echoing an unblinded event must not show it to a
        blinded user."""
        try:
            url = check_url(sub.url, self.hosts)
            secret = self._secret(sub)
        except TrialStackError as refused:
            return Attempt(False, None, refused.message)
        if secret is None:
            return Attempt(False, None, "the subscription's signing secret is not in the vault")
        body = message_body(event)
        headers = signed_headers(secret, event, body, self.clock)
        try:
            with client.stream("POST", url, content=body, headers=headers) as response:
                status = response.status_code
        except httpx.TimeoutException:
            return Attempt(False, None, f"no answer within {self.policy.timeout_seconds:g} s")
        except httpx.HTTPError as error:
            return Attempt(False, None, f"{type(error).__name__}: {error}"[:MAX_ERROR])
        if 200 <= status < 300:
            return Attempt(True, status, None)
        try:
            phrase = f" {HTTPStatus(status).phrase}"
        except ValueError:
            phrase = ""
        followed = " (redirects are not followed)" if 300 <= status < 400 else ""
        return Attempt(False, status, f"HTTP {status}{phrase}{followed}")

    def _record(self, sub: SubscriptionRow, head: _Head, attempt: Attempt) -> str:
        """Write the attempt's outcome under the lease: "delivered", "dead", "retry", or "lost" (lease gone)."""
        now = self.clock.now()
        at = utc_timestamp(now)
        seq = head.event.study_seq
        key = _key(webhook_delivery, sub.study_id, sub.subscription_id)
        with self._writing() as connection:
            held = connection.execute(select(webhook_delivery.c.lease_owner).where(key)).scalar()
            if held != self.owner:
                return "lost"
            outcome = {"last_attempt_at": at, "last_status": attempt.status, "last_error": attempt.error}
            if attempt.ok:
                if not head.replay:
                    outbox.acknowledge(connection, sub.subscriber, sub.study_id, seq)
                connection.execute(
                    webhook_dead_letter.update()
                    .where(
                        _key(webhook_dead_letter, sub.study_id, sub.subscription_id),
                        webhook_dead_letter.c.study_seq == seq,
                        webhook_dead_letter.c.state != DELIVERED,
                    )
                    .values(state=DELIVERED, delivered_at=at)
                )
                connection.execute(
                    webhook_delivery.update().where(key).values(
                        study_seq=None, attempts=0, next_attempt_at=None, delivered_seq=seq, delivered_at=at, **outcome
                    )
                )  # fmt: skip
                return "delivered"
            failures = head.attempts + 1
            if failures >= self.policy.max_attempts:
                self._dead_letter(connection, sub, head.event, failures, attempt, at)
                if not head.replay:
                    outbox.acknowledge(connection, sub.subscriber, sub.study_id, seq)
                connection.execute(
                    webhook_delivery.update().where(key).values(study_seq=None, attempts=0, next_attempt_at=None,
                                                                **outcome)
                )  # fmt: skip
                log.warning("webhook %s: study_seq %d dead-lettered after %d attempts (%s)",
                            sub.subscription_id, seq, failures, attempt.error)  # fmt: skip
                return "dead"
            wait = timedelta(seconds=self.policy.delay(failures, self.rng))
            connection.execute(
                webhook_delivery.update().where(key).values(
                    study_seq=seq, attempts=failures, next_attempt_at=utc_timestamp(now + wait), **outcome
                )
            )  # fmt: skip
            return "retry"

    @staticmethod
    def _dead_letter(
        connection: Connection, sub: SubscriptionRow, event: RecordedEvent, failures: int, attempt: Attempt, at: str
    ) -> None:
        statement = _insert(connection)(webhook_dead_letter).values(
            study_id=sub.study_id, subscription_id=sub.subscription_id, study_seq=event.study_seq,
            event_type=event.event_type, attempts=failures, last_status=attempt.status,
            last_error=attempt.error or "failed", dead_at=at, state=DEAD,
        )  # fmt: skip
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["study_id", "subscription_id", "study_seq"],
                set_={
                    "attempts": webhook_dead_letter.c.attempts + statement.excluded.attempts,
                    "last_status": statement.excluded.last_status,
                    "last_error": statement.excluded.last_error,
                    "dead_at": statement.excluded.dead_at,
                    "state": DEAD,
                },
            )
        )

    # -- the lease --

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A short write transaction (on SQLite it takes the write lock at BEGIN, like a unit of work)."""
        with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as connection, connection.begin():
            yield connection

    def _held(self, sub: SubscriptionRow) -> Any:
        return _key(webhook_delivery, sub.study_id, sub.subscription_id) & (
            webhook_delivery.c.lease_owner == self.owner
        )

    def _lease_until(self) -> str:
        return utc_timestamp(self.clock.now() + timedelta(seconds=self.policy.timeout_seconds) + LEASE_MARGIN)

    def _claim(self, sub: SubscriptionRow) -> bool:
        now = self._now()
        key = _key(webhook_delivery, sub.study_id, sub.subscription_id)
        with self._writing() as connection:
            connection.execute(
                _insert(connection)(webhook_delivery)
                .values(study_id=sub.study_id, subscription_id=sub.subscription_id, attempts=0)
                .on_conflict_do_nothing(index_elements=["study_id", "subscription_id"])
            )
            free = (
                webhook_delivery.c.lease_owner.is_(None)
                | (webhook_delivery.c.lease_until < now)
                | (webhook_delivery.c.lease_owner == self.owner)
            )
            lease = {"lease_owner": self.owner, "lease_until": self._lease_until()}
            claimed = connection.execute(webhook_delivery.update().where(key, free).values(**lease))
            return bool(claimed.rowcount == 1)

    def _release(self, sub: SubscriptionRow) -> None:
        with self._writing() as connection:
            connection.execute(
                webhook_delivery.update().where(self._held(sub)).values(lease_owner=None, lease_until=None)
            )
