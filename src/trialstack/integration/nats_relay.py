"""The outbox relay to NATS JetStream: every committed event, once on its stream, in study order, at least once.

The ledger is the outbox (docs/decisions/0002-ledger-is-the-outbox.md): the relay reads each study's events after
its `relay_position`, publishes them on JetStream, waits for JetStream's acknowledgement of each, and only then
moves the position — one transaction per batch — so a crash or an outage at any point re-publishes, never skips.
The re-published messages carry the same `Nats-Msg-Id` (the event's hash), which JetStream drops as duplicates
within the stream's duplicate window (docs/decisions/0011-nats-relay.md).

Subjects are `trialstack.<study>.<context>.<EventType>` (`outbox.subject_for`). Events that reveal treatment
(`registry.is_blinded`, unknown types included) go only to `trialstack-unblinded.<study>.<context>.<EventType>`
on a stream of their own, so a consumer of `trialstack.>` never receives one. A namespace prefixes both subject
roots and the stream names (`ns.trialstack.…`, `ns_TRIALSTACK`) so several relays — tests, staging — can share
one NATS server: JetStream refuses two streams whose subjects overlap, so separate stream names are not enough.

Order: batches are pipelined on one connection (two in flight) and JetStream stores one connection's messages in
the order they arrive. The client never re-sends buffered messages on a new connection (no automatic reconnect:
the relay reconnects itself and re-publishes from its position), so a lost message is never overtaken by a later
one; the position moves only over the contiguous acknowledged prefix of each study, batch after batch.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, PubAck, RetentionPolicy, StorageType, StreamConfig
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from trialstack.errors import TrialStackError
from trialstack.ledger import outbox, store
from trialstack.ledger.database import WRITE_OPTION
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import is_blinded
from trialstack.ledger.schema import study_head

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
SUBJECT_ROOT = "trialstack"
UNBLINDED_ROOT = "trialstack-unblinded"
STREAM = "TRIALSTACK"
UNBLINDED_STREAM = "TRIALSTACK_UNBLINDED"
SUBSCRIBER = "nats"
"""The `relay_position.subscriber` of the relay without a namespace; with one it is `nats:<namespace>`."""
DUPLICATE_WINDOW_SECONDS = 3600.0
"""How long JetStream remembers a message id (docs/operations.md: a relay down longer may re-deliver its last
unacknowledged batch once, as a duplicate, after it comes back)."""

_NAMESPACE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class RelayConfigError(TrialStackError):
    """A relay setting that cannot work (a bad namespace, a stream that captures other subjects): no retry helps."""


class RelayUnavailable(TrialStackError):
    """NATS (or JetStream, or the database) did not answer; the relay retries with exponential backoff."""


@dataclass(frozen=True)
class RelayConfig:
    url: str = DEFAULT_NATS_URL
    namespace: str = ""
    """Prefix of subjects (`<ns>.trialstack.…`), stream names (`<ns>_TRIALSTACK`) and the position's subscriber."""
    stream: str | None = None
    """The blinded stream's name; default TRIALSTACK (with a namespace `<ns>_TRIALSTACK`)."""
    unblinded_stream: str | None = None
    """The restricted stream's name; default TRIALSTACK_UNBLINDED (with a namespace `<ns>_TRIALSTACK_UNBLINDED`)."""
    batch: int = 1_000
    """Events published, acknowledged by JetStream, then acknowledged in the ledger in one transaction."""
    poll_interval: float = 0.25
    """Seconds between two reads of the ledger when nothing was pending (polling mode)."""
    ack_timeout: float = 10.0
    """Seconds to wait for JetStream's acknowledgements of a batch before it counts as failed."""
    connect_timeout: float = 2.0
    retries: int | None = None
    """Retries after consecutive failed attempts before giving up (RelayUnavailable); None retries for ever."""
    retry_delay: float = 0.5
    """The first backoff delay in seconds; it doubles after each failed attempt, up to `retry_max_delay`."""
    retry_max_delay: float = 30.0
    duplicate_window: float = DUPLICATE_WINDOW_SECONDS

    def __post_init__(self) -> None:
        if self.namespace and not _NAMESPACE.match(self.namespace):
            raise RelayConfigError(
                f"the relay namespace {self.namespace!r} must be 1 to 40 letters, digits, '_' or '-'",
                field="namespace",
            )
        for name in (self.stream, self.unblinded_stream):
            if name is not None and not _STREAM_NAME.match(name):
                raise RelayConfigError(f"stream name {name!r} must be letters, digits, '_' or '-'", field="stream")
        if self.stream_name == self.unblinded_stream_name:
            raise RelayConfigError("the blinded and the unblinded stream must be two streams", field="stream")
        if self.batch < 1 or self.poll_interval <= 0 or self.ack_timeout <= 0 or self.retry_delay <= 0:
            raise RelayConfigError("batch, poll interval, ack timeout and retry delay must be positive")

    def _prefixed(self, name: str, separator: str) -> str:
        return f"{self.namespace}{separator}{name}" if self.namespace else name

    @property
    def stream_name(self) -> str:
        return self.stream or self._prefixed(STREAM, "_")

    @property
    def unblinded_stream_name(self) -> str:
        return self.unblinded_stream or self._prefixed(UNBLINDED_STREAM, "_")

    @property
    def subject_root(self) -> str:
        return self._prefixed(SUBJECT_ROOT, ".")

    @property
    def unblinded_root(self) -> str:
        return self._prefixed(UNBLINDED_ROOT, ".")

    @property
    def subscriber(self) -> str:
        return f"{SUBSCRIBER}:{self.namespace}" if self.namespace else SUBSCRIBER

    def streams(self) -> list[StreamConfig]:
        """The two streams the relay creates when they are missing (docs/operations.md explains each choice)."""
        return [
            StreamConfig(
                name=name,
                description=description,
                subjects=[f"{root}.>"],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                discard=DiscardPolicy.OLD,
                duplicate_window=self.duplicate_window,
                num_replicas=1,
            )
            for name, root, description in (
                (self.stream_name, self.subject_root, "TrialStack ledger events (blinded: no treatment revealed)"),
                (self.unblinded_stream_name, self.unblinded_root, "TrialStack events that reveal treatment"),
            )
        ]


@dataclass(frozen=True)
class Message:
    subject: str
    stream: str
    body: bytes
    headers: dict[str, str]


_ROUTES: dict[tuple[str, str], tuple[str, bool]] = {}
"""(study, event type) -> (the subject after its root, whether it reveals treatment): the registry does not change
while the relay runs (a type registered later stays on the unblinded side, the safe one)."""


def route(event: RecordedEvent, config: RelayConfig) -> tuple[str, str]:
    """(subject, stream) of an event: `trialstack.<study>.<context>.<EventType>` on the blinded stream, or the same
    under `trialstack-unblinded.` on the unblinded one when its type reveals treatment or is unknown."""
    key = (event.study_id, event.event_type)
    known = _ROUTES.get(key)
    if known is None:
        subject = outbox.subject_for(event)  # trialstack.<study>.<context>.<EventType>
        known = (subject[len(SUBJECT_ROOT) :], is_blinded(event.event_type))
        if len(_ROUTES) >= 10_000:
            _ROUTES.clear()
        _ROUTES[key] = known
    rest, blinded = known
    if blinded:
        return config.unblinded_root + rest, config.unblinded_stream_name
    return config.subject_root + rest, config.stream_name


def encode(event: RecordedEvent, config: RelayConfig) -> Message:
    """The JetStream message of one event: its envelope as stored (JSON, keys sorted, the payload's canonical text
    spliced in) with its hash, so a consumer can recompute the hash chain; `Nats-Msg-Id` is the event hash."""
    subject, stream = route(event, config)
    body = orjson.dumps(
        {
            "actor_id": event.actor_id, "actor_role": event.actor_role, "causation_id": event.causation_id,
            "correlation_id": event.correlation_id, "event_type": event.event_type, "external_id": event.external_id,
            "hash": event.hash, "occurred_at": event.occurred_at, "on_behalf_of": event.on_behalf_of,
            "payload": orjson.Fragment(event.payload_json), "prev_hash": event.prev_hash, "reason": event.reason,
            "recorded_at": event.recorded_at, "schema_version": event.schema_version, "source": event.source,
            "stream_id": event.stream_id, "stream_type": event.stream_type, "stream_version": event.stream_version,
            "study_id": event.study_id, "study_seq": event.study_seq,
        },
        option=orjson.OPT_SORT_KEYS,
    )  # fmt: skip
    headers = {
        "Nats-Msg-Id": event.hash,
        "Nats-Expected-Stream": stream,
        "Trialstack-Study": event.study_id,
        "Trialstack-Study-Seq": str(event.study_seq),
        "Trialstack-Event-Type": event.event_type,
    }
    return Message(subject, stream, body, headers)


@dataclass
class _Batch:
    events: list[RecordedEvent]
    messages: list[Message]
    futures: list[asyncio.Future[PubAck]] = field(default_factory=list)
    problem: str | None = None
    """Why issuing it stopped short, if it did."""


@dataclass
class RelayStats:
    relayed: int = 0
    """Events whose position moved (each acknowledged by JetStream: stored now or earlier)."""
    duplicates: int = 0
    """Of those, how many JetStream reported as duplicates of a message it already held (a re-publish)."""
    unblinded: int = 0
    """Of those, how many went to the unblinded stream."""
    batches: int = 0
    failures: int = 0
    """Failed attempts (connect, stream check, publish, database), each followed by a backoff."""
    by_study: dict[str, int] = field(default_factory=dict)


Warn = Callable[[str], object]


class NatsRelay:
    """Publishes pending ledger events to JetStream; `run(once=True)` drains what is pending and returns."""

    def __init__(self, engine: Engine, config: RelayConfig, warn: Warn = print) -> None:
        self.engine = engine
        self.config = config
        self.warn = warn
        self.stats = RelayStats()
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._errors: list[BaseException] = []
        self._lost = asyncio.Event()
        """Set when the connection drops: the acknowledgements still awaited will never come."""

    async def run(self, *, once: bool, stop: asyncio.Event | None = None) -> RelayStats:
        """Relay until nothing is pending (`once`) or until `stop` is set; raise RelayUnavailable after
        `config.retries` consecutive failed attempts (None: never give up)."""
        stop = stop or asyncio.Event()
        failed = 0
        try:
            while not stop.is_set():
                try:
                    js = await self._jetstream()
                    moved = await self.relay_pending(js, stop)
                except RelayUnavailable as exc:
                    await self._disconnect()
                    failed += 1
                    self.stats.failures += 1
                    if self.config.retries is not None and failed > self.config.retries:
                        raise RelayUnavailable(
                            f"gave up after {failed} failed attempts: {exc.message}; the ledger position did not"
                            " move past the last event JetStream acknowledged"
                        ) from None
                    delay = min(self.config.retry_delay * 2 ** (failed - 1), self.config.retry_max_delay)
                    self.warn(f"relay: {exc.message}; retrying in {delay:.2f} s (attempt {failed + 1})")
                    await _sleep(stop, delay)
                    continue
                if failed:
                    self.warn(f"relay: NATS at {self._where()} and the ledger answer again; resuming from the position")
                    failed = 0
                if moved == 0:
                    if once:
                        break
                    await _sleep(stop, self.config.poll_interval)
        finally:
            await self._disconnect()
        return self.stats

    async def relay_pending(self, js: JetStreamContext, stop: asyncio.Event) -> int:
        """Publish everything pending; the number of events whose position moved.

        Two batches are in flight: while JetStream acknowledges one, the next is read (in a worker thread) and
        published on the same connection, which keeps them in order. A batch's positions move in one transaction
        once every acknowledgement of it is in, batches in order. When anything fails, the acknowledged prefix of
        each study is recorded, the batches after it are abandoned (JetStream may hold some of their messages: the
        re-publish is a duplicate it drops) and RelayUnavailable is raised.
        """
        sent: dict[str, int] = {}
        """Per study, the last study_seq handed to NATS in this call (the ledger's position lags it)."""
        in_flight: deque[_Batch] = deque()
        moved = 0
        reading: asyncio.Task[list[RecordedEvent]] | None = None
        """The next batch, read from the ledger while the one before it is handed to NATS."""
        try:
            while True:
                fresh = None
                if not stop.is_set() and not (in_flight and in_flight[-1].problem):
                    events = await (reading or self._read(sent))
                    reading = None
                    if events:
                        sent.update((event.study_id, event.study_seq) for event in events)
                        if len(events) == self.config.batch:
                            reading = asyncio.ensure_future(self._read(sent))
                        fresh = await self._issue(js, events)
                        in_flight.append(fresh)
                if not in_flight:
                    return moved
                if fresh is None or fresh.problem or len(in_flight) > 1:
                    moved += await self._settle(in_flight.popleft())
        finally:
            if reading is not None:
                reading.cancel()
                reading.add_done_callback(_retrieve)
            for batch in in_flight:
                for future in batch.futures:
                    future.cancel()

    async def _read(self, sent: dict[str, int]) -> list[RecordedEvent]:
        try:
            return await asyncio.to_thread(self._pending, dict(sent))
        except DBAPIError as exc:
            raise RelayUnavailable(f"cannot read the ledger: {_reason(exc)}") from None

    def _pending(self, sent: dict[str, int]) -> list[RecordedEvent]:
        """Up to a batch of events after what was sent (or, for a study not sent yet, after its position), study by
        study, in study order: `outbox.pending` with the positions of the batches still in flight."""
        events: list[RecordedEvent] = []
        with self.engine.connect() as connection:
            for study_id, last_seq in connection.execute(select(study_head.c.study_id, study_head.c.last_seq)):
                study = str(study_id)
                after = sent[study] if study in sent else outbox.position(connection, self.config.subscriber, study)
                if after < int(last_seq):
                    events.extend(store.read_study(connection, study, after, self.config.batch - len(events)))
                if len(events) >= self.config.batch:
                    break
        return events

    async def _issue(self, js: JetStreamContext, events: list[RecordedEvent]) -> _Batch:
        """Hand a batch to NATS (not waiting for JetStream's acknowledgements)."""
        batch = _Batch(events, [encode(event, self.config) for event in events])

        async def issue() -> None:
            for message in batch.messages:
                batch.futures.append(await js.publish_async(message.subject, message.body, headers=message.headers))

        try:  # bounded: a connection that dies under a full outbound buffer would otherwise hold the batch for ever
            if not await self._unless_lost(issue()):
                batch.problem = self._unanswered()
        except Exception as exc:  # a closed connection, a payload over the server's limit: stop issuing
            batch.problem = self._describe(exc)
        return batch

    async def _settle(self, batch: _Batch) -> int:
        """Wait for a batch's acknowledgements, then move each study's position over its acknowledged prefix."""
        config = self.config
        problem = batch.problem
        if batch.futures and not await self._unless_lost(asyncio.wait(batch.futures)):
            problem = problem or self._unanswered()
        acknowledged: dict[str, int] = {}
        stopped: set[str] = set()
        counted = RelayStats()
        for event, message, future in zip(batch.events, batch.messages, batch.futures, strict=False):
            if event.study_id in stopped:
                continue
            ack, error = _outcome(future)
            if ack is None or ack.stream != message.stream:
                stopped.add(event.study_id)
                if error is not None:
                    problem = problem or self._describe(error)
                elif ack is not None:
                    problem = problem or f"JetStream stored {message.subject} on {ack.stream}, not {message.stream}"
                continue
            acknowledged[event.study_id] = event.study_seq
            counted.relayed += 1
            counted.duplicates += bool(ack.duplicate)
            counted.unblinded += message.stream == config.unblinded_stream_name
            counted.by_study[event.study_id] = counted.by_study.get(event.study_id, 0) + 1
        if acknowledged:
            await asyncio.to_thread(self._acknowledge, acknowledged)
            self._count(counted)
        if problem is not None:
            raise RelayUnavailable(problem)
        return counted.relayed

    def _unanswered(self) -> str:
        if self._lost.is_set():
            return self._describe(nats.errors.ConnectionClosedError())
        return f"NATS at {self._where()} did not take or acknowledge a batch within {self.config.ack_timeout} s"

    async def _unless_lost(self, work: Coroutine[Any, Any, object]) -> bool:
        """Run `work` until it ends (True: re-raising what it raised), the connection drops or the ack timeout
        passes (False: `work` is cancelled)."""
        task = asyncio.ensure_future(work)
        lost = asyncio.ensure_future(self._lost.wait())
        await asyncio.wait({task, lost}, timeout=self.config.ack_timeout, return_when=asyncio.FIRST_COMPLETED)
        lost.cancel()
        if not task.done():
            task.cancel()
            task.add_done_callback(_retrieve)  # it may still end with the connection's error: nothing to report
            return False
        task.result()
        return True

    def _acknowledge(self, positions: dict[str, int]) -> None:
        """Move every study's position in one transaction (after JetStream acknowledged each event up to it)."""
        try:
            with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as connection, connection.begin():
                for study_id, study_seq in positions.items():
                    outbox.acknowledge(connection, self.config.subscriber, study_id, study_seq)
        except DBAPIError as exc:  # JetStream holds them: the re-publish after the retry is a duplicate it drops
            raise RelayUnavailable(f"cannot record the relay position: {_reason(exc)}") from None

    def _count(self, batch: RelayStats) -> None:
        self.stats.batches += 1
        self.stats.relayed += batch.relayed
        self.stats.duplicates += batch.duplicates
        self.stats.unblinded += batch.unblinded
        for study_id, count in batch.by_study.items():
            self.stats.by_study[study_id] = self.stats.by_study.get(study_id, 0) + count

    async def _jetstream(self) -> JetStreamContext:
        """The open connection's JetStream context; connect and check the streams first when there is none."""
        if self._client is not None and self._client.is_connected and self._js is not None:
            return self._js
        await self._disconnect()
        self._errors = []

        async def record(error: Exception) -> None:
            self._errors.append(error)

        lost = self._lost = asyncio.Event()

        async def gone() -> None:
            lost.set()

        try:
            self._client = await asyncio.wait_for(
                nats.connect(
                    self.config.url,
                    name="trialstack-relay",
                    allow_reconnect=False,  # the relay reconnects itself: buffered messages are never re-sent
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0,
                    connect_timeout=max(1, round(self.config.connect_timeout)),
                    flush_timeout=self.config.ack_timeout,
                    error_cb=record,
                    disconnected_cb=gone,
                    closed_cb=gone,
                ),
                timeout=self.config.connect_timeout * 3,
            )
        except Exception as exc:
            cause = self._errors[-1] if self._errors else exc
            raise RelayUnavailable(f"cannot reach NATS at {self._where()}: {_reason(cause)}") from None
        js = self._client.jetstream(publish_async_max_pending=2 * self.config.batch)
        await self._ensure_streams(js)
        self._js = js
        return js

    async def _ensure_streams(self, js: JetStreamContext) -> None:
        """Create each stream that is missing; refuse one that exists without capturing the relay's subjects."""
        for wanted in self.config.streams():
            assert wanted.name is not None and wanted.subjects is not None
            try:
                try:
                    found = await js.stream_info(wanted.name)
                except nats.js.errors.NotFoundError:
                    await js.add_stream(wanted)
                    continue
            except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError):
                raise RelayUnavailable(
                    f"JetStream does not answer at {self._where()} (is nats-server started with -js?)"
                ) from None
            except nats.js.errors.APIError as exc:
                raise RelayConfigError(f"cannot create stream {wanted.name}: {exc.description or exc}") from None
            except Exception as exc:
                raise RelayUnavailable(f"NATS at {self._where()}: {self._describe(exc)}") from None
            subjects = set(found.config.subjects or [])
            if not set(wanted.subjects) <= subjects:
                raise RelayConfigError(
                    f"stream {wanted.name} exists with subjects {sorted(subjects)}, not {wanted.subjects[0]}:"
                    " choose another --namespace or stream name"
                )

    def _describe(self, error: BaseException) -> str:
        if isinstance(error, nats.errors.ConnectionClosedError | nats.errors.StaleConnectionError):
            cause = f" ({_reason(self._errors[-1])})" if self._errors else ""
            return f"lost the connection to NATS at {self._where()}{cause}"
        if isinstance(error, nats.js.errors.NoStreamResponseError):
            return f"no JetStream stream answers the relay's subjects at {self._where()}"
        if isinstance(error, nats.js.errors.APIError):
            return f"JetStream refused a message: {error.description or error}"
        return f"publishing to NATS at {self._where()} failed: {_reason(error)}"

    def _where(self) -> str:
        return self.config.url

    async def _disconnect(self) -> None:
        client, self._client, self._js = self._client, None, None
        if client is not None and not client.is_closed:
            try:
                await asyncio.wait_for(client.close(), timeout=self.config.connect_timeout)
            except Exception:  # already broken: nothing to flush, nothing to report
                return


def _outcome(future: asyncio.Future[PubAck]) -> tuple[PubAck | None, BaseException | None]:
    if not future.done() or future.cancelled():
        return None, None
    error = future.exception()
    return (None, error) if error is not None else (future.result(), None)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _reason(error: BaseException) -> str:
    if isinstance(error, DBAPIError):
        error = error.orig or error
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text or type(error).__name__


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less when `stop` is set."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return
