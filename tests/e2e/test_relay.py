"""`trialstack relay` against the real NATS JetStream at 127.0.0.1:4222 (and a NATS server of its own for an
outage), on SQLite and PostgreSQL. Each test relays under a namespace of its own (its own subjects, streams and
relay position) and deletes its streams after.

What must hold: every event exactly once on JetStream (at least once from the relay, the duplicates dropped by
JetStream's message id), in study order per study; events that reveal treatment only on the unblinded stream;
a relay killed at any point, or cut off from NATS, loses nothing when it comes back; the position never moves
past what JetStream acknowledged."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import nats
import orjson
import pytest
from nats.aio.msg import Msg
from nats.js.api import StreamConfig
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from tests.e2e.relay_support import (
    NATS_URL,
    Stored,
    own_namespace,
    positions,
    relay_process,
    stream_messages,
    write_events,
)
from tests.e2e.test_demo_sizes import fast_passwords
from trialstack.bootstrap import Platform, bootstrap
from trialstack.cli.main import app
from trialstack.integration.nats_relay import NatsRelay, RelayConfig, RelayStats
from trialstack.ledger.chain import chain_hash
from trialstack.ledger.registry import is_blinded
from trialstack.ledger.schema import ledger_event, study_head
from trialstack.settings import Settings

runner = CliRunner()
NATS_SERVER = "/usr/sbin/nats-server"
IRT_BLINDED = {"TreatmentAllocated", "KitsRegistered", "ResupplyTriggered"}


@pytest.fixture
def namespace() -> Iterator[str]:
    with own_namespace() as name:
        yield name


def heads(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {str(s): int(n) for s, n in connection.execute(select(study_head.c.study_id, study_head.c.last_seq))}


def hashes(engine: Engine) -> dict[tuple[str, int], str]:
    with engine.connect() as connection:
        rows = connection.execute(select(ledger_event.c.study_id, ledger_event.c.study_seq, ledger_event.c.hash))
        return {(str(study), int(seq)): str(digest) for study, seq, digest in rows}


def relayed(config: RelayConfig, url: str = NATS_URL) -> tuple[list[Stored], list[Stored]]:
    """(the blinded stream's messages, the unblinded stream's), each in stream order."""
    return stream_messages(config.stream_name, url), stream_messages(config.unblinded_stream_name, url)


def assert_each_event_once_in_study_order(engine: Engine, config: RelayConfig, url: str = NATS_URL) -> None:
    blinded, unblinded = relayed(config, url)
    expected = hashes(engine)
    found = [(m.study, m.seq) for m in blinded + unblinded]
    assert len(found) == len(expected), f"{len(found)} messages for {len(expected)} events"
    assert set(found) == set(expected)
    assert {(m.study, m.seq): m.msg_id for m in blinded + unblinded} == expected  # Nats-Msg-Id = the event hash
    for messages in (blinded, unblinded):
        for study in {m.study for m in messages}:
            seqs = [m.seq for m in messages if m.study == study]
            assert seqs == sorted(seqs), f"{study} out of study order on one stream"
    assert not [m.event_type for m in blinded if is_blinded(m.event_type)]
    assert all(is_blinded(m.event_type) for m in unblinded)
    assert all(m.subject.startswith(f"{config.subject_root}.") for m in blinded)
    assert all(m.subject.startswith(f"{config.unblinded_root}.") for m in unblinded)


def test_relay_once_publishes_the_demo_once_in_study_order_keeping_treatment_off_the_blinded_subjects(
    database_url: str,
) -> None:
    """One demo per backend, then every check of `--once` on it, each under a namespace of its own."""
    with fast_passwords():
        demo = runner.invoke(app, ["demo", "--subjects", "3", "--seed", "7", "--db", database_url])
    assert demo.exit_code == 0, demo.output
    platform = bootstrap(database_url=database_url)
    try:
        _once_then_again_adds_none(platform, database_url)
        _a_crash_between_publish_and_acknowledge_is_re_published_and_dropped_by_jetstream(platform)
        _nats_unreachable_is_one_line_per_attempt_and_exit_1_with_the_position_unchanged(platform, database_url)
    finally:
        platform.close()


def _once_then_again_adds_none(platform: Platform, database_url: str) -> None:
    with own_namespace() as ns:
        config = RelayConfig(namespace=ns)
        total = sum(heads(platform.engine).values())
        first = runner.invoke(app, ["relay", "--once", "--db", database_url, "--namespace", ns])
        assert first.exit_code == 0, first.output
        assert f"relayed {total} events" in first.output
        assert_each_event_once_in_study_order(platform.engine, config)
        blinded, unblinded = relayed(config)
        assert {m.event_type for m in unblinded} >= IRT_BLINDED
        assert positions(platform.engine, config.subscriber) == heads(platform.engine)

        consumed = asyncio.run(consume(f"{config.subject_root}.>"))  # a blinded consumer: a JetStream consumer
        assert len(consumed) == len(blinded) and not IRT_BLINDED & set(consumed)

        message = orjson.loads(blinded[-1].data)  # the body is the stored envelope: the hash can be recomputed
        digest = message.pop("hash")
        envelope = orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
        assert chain_hash(message["prev_hash"], envelope) == digest == blinded[-1].msg_id

        again = runner.invoke(app, ["relay", "--once", "--db", database_url, "--namespace", ns])
        assert again.exit_code == 0, again.output
        assert "relayed 0 events" in again.output and "none pending" in again.output
        assert [len(m) for m in relayed(config)] == [len(blinded), len(unblinded)]


async def consume(subject: str) -> list[str]:
    """Event types a JetStream consumer of `subject` receives (from the start of whatever stream holds it)."""
    client = await nats.connect(NATS_URL)
    try:
        subscription = await client.jetstream().subscribe(subject, ordered_consumer=True)
        types: list[str] = []
        while True:
            try:
                message = await subscription.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                return types
            types.append((message.headers or {})["Trialstack-Event-Type"])
    finally:
        await client.close()


class Crash(BaseException):
    """The relay process dying between JetStream's acknowledgement and the position's commit."""


class CrashingRelay(NatsRelay):
    """Dies when it is about to acknowledge its second batch, after JetStream acknowledged every message of it (and
    with the third batch in flight: the relay keeps two)."""

    batches = 0

    def _acknowledge(self, positions: dict[str, int]) -> None:
        self.batches += 1
        if self.batches == 2:
            raise Crash
        super()._acknowledge(positions)


def _a_crash_between_publish_and_acknowledge_is_re_published_and_dropped_by_jetstream(platform: Platform) -> None:
    total = sum(heads(platform.engine).values())
    with own_namespace() as ns:
        config = RelayConfig(namespace=ns, batch=40)
        with pytest.raises(Crash):
            asyncio.run(CrashingRelay(platform.engine, config, warn=print).run(once=True))
        assert sum(positions(platform.engine, config.subscriber).values()) == 40
        time.sleep(0.2)  # what NATS received before the crash, it stores
        held = sum(len(m) for m in relayed(config))  # the second batch, and what of the third was in flight
        assert 80 <= held <= 120, held  # JetStream holds them; the ledger's position does not say so

        core: dict[str, list[str]] = {"blinded_consumer": [], "all": []}
        stats = asyncio.run(relay_with_core_subscribers(platform.engine, config, core))
        assert stats.duplicates == held - 40 and stats.relayed == total - 40  # re-published, dropped by JetStream
        assert_each_event_once_in_study_order(platform.engine, config)
        assert positions(platform.engine, config.subscriber) == heads(platform.engine)
        # a core subscriber sees every publish (duplicates included) but never a treatment under trialstack.>
        assert len(core["all"]) == total - 40 and not IRT_BLINDED & set(core["blinded_consumer"])
        assert core["blinded_consumer"] and IRT_BLINDED & set(core["all"])  # the namespace's subscriber gets them


async def relay_with_core_subscribers(engine: Engine, config: RelayConfig, seen: dict[str, list[str]]) -> RelayStats:
    client = await nats.connect(NATS_URL)

    def collect(into: list[str]) -> Callable[[Msg], Awaitable[None]]:
        async def callback(message: Msg) -> None:
            into.append((message.headers or {})["Trialstack-Event-Type"])

        return callback

    await client.subscribe(f"{config.subject_root}.>", cb=collect(seen["blinded_consumer"]))
    await client.subscribe(f"{config.namespace}.>", cb=collect(seen["all"]))
    await client.flush()
    try:
        stats = await NatsRelay(engine, config, warn=print).run(once=True)
        await client.flush()
        await asyncio.sleep(0.3)
        return stats
    finally:
        await client.close()


def _nats_unreachable_is_one_line_per_attempt_and_exit_1_with_the_position_unchanged(
    platform: Platform, database_url: str
) -> None:
    with own_namespace() as ns:
        url = f"nats://127.0.0.1:{free_port()}"
        arguments = ["--nats-url", url, "--namespace", ns, "--retries", "2", "--retry-delay", "0.01"]
        result = runner.invoke(app, ["relay", "--once", "--db", database_url, *arguments])
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 3, result.output
        assert all(f"cannot reach NATS at {url}" in line for line in lines)
        assert "retrying in 0.01 s" in lines[0] and "retrying in 0.02 s" in lines[1]
        assert lines[2].startswith("relay: gave up after 3 failed attempts")
        assert "Traceback" not in result.output
        assert positions(platform.engine, RelayConfig(namespace=ns).subscriber) == {}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text()}")
        time.sleep(0.02)


def stop(process: subprocess.Popen[bytes], log: Path) -> str:
    """SIGTERM: the relay finishes its batch, prints its summary and exits 0."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, log.read_text()
    return log.read_text()


def test_a_relay_killed_mid_run_then_restarted_loses_nothing_and_duplicates_are_dropped(
    platform: Platform, database_url: str, namespace: str, tmp_path: Path
) -> None:
    write_events(platform.engine, "S1", 1_500)
    write_events(platform.engine, "S2", 1_500)
    config = RelayConfig(namespace=namespace)
    arguments = ["--namespace", namespace, "--batch", "25", "--poll-interval", "0.05"]
    log = tmp_path / "relay-1.log"
    first = relay_process(database_url, *arguments, log=log)
    try:
        wait_for(lambda: sum(positions(platform.engine, config.subscriber).values()) >= 100, "a few batches", log)
    finally:
        first.kill()  # SIGKILL: no batch is finished, nothing is flushed
        first.wait()
    killed_at = sum(positions(platform.engine, config.subscriber).values())
    assert 0 < killed_at < 3_000, log.read_text()

    log = tmp_path / "relay-2.log"
    second = relay_process(database_url, *arguments, log=log)
    wait_for(lambda: positions(platform.engine, config.subscriber) == {"S1": 1_500, "S2": 1_500}, "all", log)
    output = stop(second, log)
    assert f"relayed {3_000 - killed_at} events" in output, output
    assert_each_event_once_in_study_order(platform.engine, config)
    assert len(stream_messages(config.unblinded_stream_name)) == 300  # every tenth reveals treatment


def start_nats(port: int, store: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"nats-server did not start on port {port}")
        time.sleep(0.05)


def test_nats_going_down_during_a_run_is_one_line_then_the_relay_resumes_from_its_position(tmp_path: Path) -> None:
    """A NATS server of the test's own, killed while the relay is publishing and restarted on the same port and
    store. On SQLite only: the outage is NATS's, the database side is the same code on both backends."""
    if not os.path.exists(NATS_SERVER):
        if os.environ.get("CI"):
            pytest.fail(f"{NATS_SERVER} is missing in CI: scripts/ensure-services needs it")
        pytest.skip(f"{NATS_SERVER} is not installed (Debian package nats-server)")
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    platform = bootstrap(Settings(database_url=database_url), migrate=True)
    port, store = free_port(), tmp_path / "jetstream"
    server = start_nats(port, store)
    url = f"nats://127.0.0.1:{port}"
    config = RelayConfig(namespace="outage")
    log = tmp_path / "relay.log"
    relay = relay_process(
        database_url, "--nats-url", url, "--namespace", "outage", "--batch", "500", "--poll-interval", "0.05",
        "--retry-delay", "0.1", log=log,
    )  # fmt: skip
    try:
        write_events(platform.engine, "S1", 200)
        wait_for(lambda: positions(platform.engine, config.subscriber) == {"S1": 200}, "the first 200", log)
        write_events(platform.engine, "S1", 5_000)
        wait_for(lambda: positions(platform.engine, config.subscriber)["S1"] > 200, "the next batch", log)
        server.kill()  # while the relay publishes the batches that follow
        server.wait(timeout=20)
        wait_for(lambda: "retrying in" in log.read_text(), "the outage line", log)
        during = positions(platform.engine, config.subscriber)
        time.sleep(0.5)
        assert positions(platform.engine, config.subscriber) == during  # nothing moves without an ack
        assert during["S1"] < 5_200, log.read_text()
        server = start_nats(port, store)
        wait_for(lambda: positions(platform.engine, config.subscriber) == {"S1": 5_200}, "the rest", log)
        output = stop(relay, log)
        lines = output.splitlines()
        outage = (f"relay: lost the connection to NATS at {url}", f"relay: cannot reach NATS at {url}")
        assert lines[1].startswith(outage), output  # the first line after the start line says what happened
        assert all(line.startswith(outage) for line in lines if "retrying in" in line), output
        assert f"relay: NATS at {url} and the ledger answer again; resuming from the position" in output
        assert "Traceback" not in output and "never retrieved" not in output
        assert_each_event_once_in_study_order(platform.engine, config, url)
    finally:
        if relay.poll() is None:
            relay.kill()
        server.terminate()
        server.wait(timeout=20)
        platform.close()


def test_settings_that_cannot_work_are_refused_in_one_line_with_exit_2(tmp_path: Path, namespace: str) -> None:
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    bootstrap(Settings(database_url=database_url), migrate=True).close()
    bad = runner.invoke(app, ["relay", "--once", "--db", database_url, "--namespace", "a.b"])
    assert bad.exit_code == 2 and "namespace 'a.b' must be" in bad.output, bad.output
    same = runner.invoke(app, ["relay", "--once", "--db", database_url, "--stream", "X", "--unblinded-stream", "X"])
    assert same.exit_code == 2 and "must be two streams" in same.output, same.output

    config = RelayConfig(namespace=namespace)
    asyncio.run(add_stream(StreamConfig(name=config.stream_name, subjects=[f"{namespace}.other.>"])))
    taken = runner.invoke(app, ["relay", "--once", "--db", database_url, "--namespace", namespace])
    assert taken.exit_code == 2, taken.output
    assert f"stream {config.stream_name} exists with subjects ['{namespace}.other.>']" in taken.output
    assert "Traceback" not in taken.output


async def add_stream(config: StreamConfig) -> None:
    client = await nats.connect(NATS_URL)
    try:
        await client.jetstream().add_stream(config)
    finally:
        await client.close()
