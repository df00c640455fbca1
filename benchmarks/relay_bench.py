"""`trialstack bench relay`: the NATS JetStream relay against plain nats-py publishing, and commit-to-consumer lag.

Measured in the same run, against the same NATS server, per backend (SQLite; PostgreSQL with --postgres):
- throughput: `--events` ledger events (nine in ten ItemValueEntered, one in ten TreatmentAllocated, so both
  streams are used; payloads of an item entry's size) relayed by `NatsRelay.run(once=True)` — read from the
  ledger, encoded, published with their message ids, every JetStream acknowledgement awaited, the position
  committed per batch — against plain nats-py `publish_async` of the very same messages (subjects, headers,
  bodies built beforehand) into twin streams, as many in flight (two batches) and every acknowledgement awaited:
  the floor for publishing these messages from Python. Target: relay ≥ 0.5× plain. `--rounds` rounds of each,
  in turn, into fresh streams; the best of each is compared (on a shared machine the slower rounds measure the
  neighbours), and the ratio of every round is printed too.
- lag: `trialstack relay` running in its polling mode in a process of its own while this process appends
  `--lag-events` events, one per unit of work, at `--lag-rate` a second; the lag is from each commit's return to
  a JetStream consumer of the relay's subjects receiving the event (p50, p99). The polling interval bounds it:
  an event waits for the next read of the ledger, half an interval on average. (These events have a type no
  context registers, so they count as revealing treatment and travel on the unblinded stream.)
Every stream is created under a namespace of the run's own and deleted after.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from importlib.metadata import version
from pathlib import Path

import nats
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from sqlalchemy import Engine

from benchmarks.common import Emit, line, rate, scratch_postgres, scratch_sqlite
from trialstack.bootstrap import Platform, bootstrap
from trialstack.errors import TrialStackError
from trialstack.integration.nats_relay import DEFAULT_NATS_URL, NatsRelay, RelayConfig, encode
from trialstack.ledger import Actor, NewEvent, outbox, store
from trialstack.ledger.chain import chain_hash, envelope_bytes
from trialstack.ledger.database import WRITE_OPTION
from trialstack.settings import Settings

STUDY = "BENCH-RELAY"
LAG_STUDY = "BENCH-LAG"
ACTOR = Actor(id="user:bench", role="study_coordinator")
FILL_BATCH = 5_000


def fill(engine: Engine, count: int) -> None:
    """`count` hash-chained events written straight into the ledger (the relay reads them; no handler runs)."""
    seq, prev = 0, "0" * 64
    for start in range(0, count, FILL_BATCH):
        rows = []
        for n in range(start + 1, min(count, start + FILL_BATCH) + 1):
            allocated = n % 10 == 0
            payload = (
                f'{{"arm":"ARM{n % 2}","number":"{1000 + n}","subject_id":"0101-{n // 20:04d}"}}'
                if allocated
                else f'{{"form":"VS","item":"ITEM{n % 20:02d}","study_version":"{"a" * 64}","subject_id":"0101-'
                f'{n // 20:04d}","unit":"mmHg","value":"{100 + n % 97}","visit":"WEEK4"}}'
            )
            fields = {
                "study_id": STUDY, "study_seq": n, "stream_type": "subject", "stream_id": f"{STUDY}/{n // 20}",
                "stream_version": n % 20 + 1, "event_type": "TreatmentAllocated" if allocated else "ItemValueEntered",
                "schema_version": 1, "payload_json": payload, "actor_id": ACTOR.id, "actor_role": ACTOR.role,
                "on_behalf_of": None, "reason": None, "occurred_at": "2026-01-05T09:00:00.000000Z",
                "recorded_at": "2026-01-05T09:00:00.000000Z", "source": None, "external_id": None,
                "correlation_id": None, "causation_id": None, "prev_hash": prev,
            }  # fmt: skip
            prev = chain_hash(prev, envelope_bytes(**fields))  # type: ignore[arg-type]
            rows.append((*fields.values(), prev))
            seq = n
        with engine.connect().execution_options(**{WRITE_OPTION: True}) as connection, connection.begin():
            store.lock_study_head(connection, STUDY)
            store.insert_events(connection, rows)
            store.write_study_head(connection, STUDY, seq, prev)


@contextmanager
def namespaces(url: str, count: int) -> Iterator[list[RelayConfig]]:
    """`count` relay configurations of this run's own; their streams are deleted after."""
    configs = [RelayConfig(url=url, namespace=f"bench{uuid.uuid4().hex[:8]}") for _ in range(count)]
    try:
        yield configs
    finally:
        asyncio.run(_delete([name for c in configs for name in (c.stream_name, c.unblinded_stream_name)], url))


async def _delete(names: list[str], url: str) -> None:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        for name in names:
            with suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(name)
    finally:
        await client.close()


async def _create_streams(js: JetStreamContext, config: RelayConfig) -> None:
    for stream in config.streams():
        await js.add_stream(stream)


async def plain_publish(config: RelayConfig, messages: list[tuple[str, bytes, dict[str, str]]], window: int) -> float:
    """Seconds for plain nats-py to publish `messages` to JetStream and receive every acknowledgement."""
    client = await nats.connect(config.url)
    try:
        js = client.jetstream(publish_async_max_pending=window)
        await _create_streams(js, config)
        start = time.perf_counter()
        futures = [await js.publish_async(subject, body, headers=headers) for subject, body, headers in messages]
        acks = await asyncio.gather(*futures)
        seconds = time.perf_counter() - start
        if len(acks) != len(messages) or any(ack.duplicate for ack in acks):
            raise TrialStackError("the plain publish did not store every message once")
        return seconds
    finally:
        await client.close()


def throughput(label: str, engine: Engine, events: int, batch: int, rounds: int, url: str, emit: Emit) -> None:
    """Relay and plain publish in turn, `rounds` times each, each round into streams of its own; the best round of
    each is reported (on a shared machine the slower rounds measure the neighbours)."""
    with engine.connect() as connection:
        pending = store.read_study(connection, STUDY, 0, events)
    relay_times, plain_times = [], []
    for _ in range(rounds):
        with namespaces(url, 2) as (relay_config, plain_config):
            relay_config = RelayConfig(url=url, namespace=relay_config.namespace, batch=batch)
            messages = []
            for event in pending:
                message = encode(event, plain_config)
                messages.append((message.subject, message.body, dict(message.headers)))
            plain_times.append(asyncio.run(plain_publish(plain_config, messages, 2 * batch)))  # as many in flight
            start = time.perf_counter()
            stats = asyncio.run(NatsRelay(engine, relay_config, warn=emit).run(once=True))
            relay_times.append(time.perf_counter() - start)
            if stats.relayed != events or stats.duplicates:
                raise TrialStackError(f"the relay moved {stats.relayed} of {events} events ({stats.duplicates} dup.)")
    relay_rate, plain_rate = rate(events, min(relay_times)), rate(events, min(plain_times))
    best = f"best of {rounds}"
    emit(line(f"{label} relay --once, {events:,} events, {best}", relay_rate, "events/s", plain_rate, "plain nats-py"))
    emit(line(f"plain nats-py publish_async, the same messages, {best}", plain_rate, "messages/s"))
    spread = ", ".join(
        f"{rate(events, r) / rate(events, p):.2f}" for r, p in zip(relay_times, plain_times, strict=True)
    )
    emit(f"{label} ratio relay / plain nats-py: {relay_rate / plain_rate:.2f} (target ≥ 0.5; round by round {spread})")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def _lag(
    platform: Platform, database_url: str, config: RelayConfig, count: int, per_second: float, poll: float, log: Path
) -> list[float]:
    """Seconds from each commit's return to a JetStream consumer receiving the event, the relay in a process."""
    committed: dict[int, float] = {}
    received: dict[int, float] = {}
    everything = asyncio.Event()

    async def arrived(message: Msg) -> None:
        headers = message.headers or {}
        if headers["Trialstack-Study"] == LAG_STUDY:
            received[int(headers["Trialstack-Study-Seq"])] = time.perf_counter()
        if len(received) > count:  # the warm-up event and the measured ones
            everything.set()

    with platform.engine.begin() as connection:  # the throughput phase's events are not this relay's business
        outbox.acknowledge(connection, config.subscriber, STUDY, store.count_events(connection, STUDY))

    client = await nats.connect(config.url)
    process = None
    try:
        js = client.jetstream()
        await _create_streams(js, config)
        for root in (config.subject_root, config.unblinded_root):
            await js.subscribe(f"{root}.>", cb=arrived, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)
        script = Path(sys.executable).with_name("trialstack")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "trialstack.cli.main"]
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*command, "relay", "--db", database_url, "--nats-url", config.url, "--namespace", config.namespace,
                 "--poll-interval", str(poll)],
                stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        warm_up: dict[int, float] = {}  # the relay's start (imports, connection) is not lag: one event first
        await asyncio.to_thread(_append_paced, platform, range(1), per_second, warm_up)
        while not set(warm_up) <= set(received):
            if process.poll() is not None or time.perf_counter() - warm_up[min(warm_up)] > 120:
                raise TrialStackError(f"the relay did not start:\n{log.read_text()}")
            await asyncio.sleep(0.05)
        await asyncio.to_thread(_append_paced, platform, range(1, count + 1), per_second, committed)
        try:
            await asyncio.wait_for(everything.wait(), timeout=60)
        except TimeoutError:
            raise TrialStackError(f"{len(received)} of {count} events arrived:\n{log.read_text()}") from None
        return [received[seq] - committed[seq] for seq in committed]
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        await client.close()


def _append_paced(platform: Platform, numbers: range, per_second: float, committed: dict[int, float]) -> None:
    """One event per unit of work at `per_second`, each commit's return time kept by its study_seq (a worker
    thread: the event loop keeps receiving meanwhile)."""
    start = time.perf_counter()
    for n in numbers:
        delay = start + (n - numbers.start) / per_second - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        with platform.unit_of_work(ACTOR) as uow:
            (event,) = uow.append(LAG_STUDY, "bench", f"lag/{n}", [NewEvent("LagMarked", {"n": n})], expected_version=0)
            uow.commit()
        committed[event.study_seq] = time.perf_counter()


def lag(label: str, platform: Platform, database_url: str, count: int, per_second: float, poll: float, url: str,
        emit: Emit, directory: Path) -> None:  # fmt: skip
    with namespaces(url, 1) as (config,):
        lags = asyncio.run(_lag(platform, database_url, config, count, per_second, poll, directory / "relay.log"))
    p50, p99 = percentile(lags, 0.5) * 1000, percentile(lags, 0.99) * 1000
    emit(
        f"{label} lag commit -> JetStream consumer, relay polling every {poll:g} s, {count} events at"
        f" {per_second:g}/s: p50 {p50:,.1f} ms, p99 {p99:,.1f} ms (max {max(lags) * 1000:,.1f} ms)"
    )


def bench_backend(label: str, scratch: AbstractContextManager[str], options: dict[str, float], url: str,
                  emit: Emit) -> None:  # fmt: skip
    with scratch as database_url, tempfile.TemporaryDirectory() as directory:
        platform = bootstrap(Settings(database_url=database_url), migrate=True)
        try:
            fill(platform.engine, int(options["events"]))
            throughput(
                label, platform.engine, int(options["events"]), int(options["batch"]), int(options["rounds"]), url, emit
            )
            lag(label, platform, database_url, int(options["lag_events"]), options["lag_rate"],
                options["poll_interval"], url, emit, Path(directory))  # fmt: skip
        finally:
            platform.close()


def run(
    events: int = 20_000,
    batch: int = 1_000,
    rounds: int = 3,
    lag_events: int = 500,
    lag_rate: float = 100.0,
    poll_interval: float = 0.25,
    nats_url: str = DEFAULT_NATS_URL,
    postgres_server: str | None = None,
    emit: Emit = print,
) -> None:
    if events < 100 or lag_events < 10 or rounds < 1:
        raise TrialStackError("--events is at least 100, --lag-events at least 10 and --rounds at least 1")
    emit(
        f"relay bench: nats-py {version('nats-py')}, NATS at {nats_url}, {os.cpu_count()} CPUs; {events:,} events"
        f" (1 in 10 reveals treatment), batch {batch:,}"
    )
    options = {"events": events, "batch": batch, "rounds": rounds, "lag_events": lag_events, "lag_rate": lag_rate,
               "poll_interval": poll_interval}  # fmt: skip
    with tempfile.TemporaryDirectory() as directory:
        bench_backend("sqlite", scratch_sqlite(Path(directory)), options, nats_url, emit)
    if postgres_server:
        bench_backend("postgresql", scratch_postgres(postgres_server), options, nats_url, emit)
