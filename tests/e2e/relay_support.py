"""What the relay's tests and its benchmark test share: ledger events written in bulk, a namespace of their own on
the NATS server at 127.0.0.1:4222 (streams deleted after), the messages a stream holds, and the relay's position."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.js.errors
from sqlalchemy import Engine, select

from trialstack.integration.nats_relay import RelayConfig
from trialstack.ledger import store
from trialstack.ledger.chain import chain_hash, envelope_bytes
from trialstack.ledger.database import WRITE_OPTION
from trialstack.ledger.schema import relay_position

NATS_URL = os.environ.get("TRIALSTACK_TEST_NATS", "nats://127.0.0.1:4222")
BLINDED_TYPE = "TreatmentAllocated"
OPEN_TYPE = "ItemValueEntered"


def write_events(engine: Engine, study_id: str, count: int, blinded_every: int = 10) -> None:
    """Append `count` hash-chained events to a study straight into the ledger (no handlers, no projections): every
    `blinded_every`-th a TreatmentAllocated, the rest ItemValueEntered, with toy payloads — the relay never decodes
    a payload, it only reads the event type to choose the stream."""
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as connection, connection.begin():
        seq, prev = store.lock_study_head(connection, study_id)
        rows = []
        for n in range(seq + 1, seq + count + 1):
            fields = {
                "study_id": study_id, "study_seq": n, "stream_type": "relay-test", "stream_id": f"{study_id}/{n}",
                "stream_version": 1, "event_type": BLINDED_TYPE if n % blinded_every == 0 else OPEN_TYPE,
                "schema_version": 1, "payload_json": f'{{"n":{n}}}', "actor_id": "test", "actor_role": "system",
                "on_behalf_of": None, "reason": None, "occurred_at": "2026-01-05T09:00:00.000000Z",
                "recorded_at": "2026-01-05T09:00:00.000000Z", "source": None, "external_id": None,
                "correlation_id": None, "causation_id": None, "prev_hash": prev,
            }  # fmt: skip
            prev = chain_hash(prev, envelope_bytes(**fields))  # type: ignore[arg-type]
            rows.append((*fields.values(), prev))
        store.insert_events(connection, rows)
        store.write_study_head(connection, study_id, seq + count, prev)


def positions(engine: Engine, subscriber: str) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(relay_position.c.study_id, relay_position.c.last_seq).where(
                relay_position.c.subscriber == subscriber
            )
        )
        return {str(study): int(seq) for study, seq in rows}


@dataclass(frozen=True)
class Stored:
    """One message as a stream holds it, in stream order."""

    subject: str
    study: str
    seq: int
    event_type: str
    msg_id: str
    data: bytes


async def _stream_messages(url: str, stream: str) -> list[Stored]:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        try:
            info = await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            return []
        found = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else ():
            raw = await js.get_msg(stream, sequence)
            headers = raw.headers or {}
            found.append(
                Stored(
                    raw.subject or "", headers["Trialstack-Study"], int(headers["Trialstack-Study-Seq"]),
                    headers["Trialstack-Event-Type"], headers["Nats-Msg-Id"], raw.data or b"",
                )
            )  # fmt: skip
        return found
    finally:
        await client.close()


def stream_messages(stream: str, url: str = NATS_URL) -> list[Stored]:
    return asyncio.run(_stream_messages(url, stream))


async def _delete_streams(url: str, names: list[str]) -> None:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        for name in names:
            try:
                await js.delete_stream(name)
            except nats.js.errors.NotFoundError:
                continue
    finally:
        await client.close()


@contextmanager
def own_namespace() -> Iterator[str]:
    """A namespace of a test's own (subjects, streams, relay position); its two streams are deleted after."""
    name = f"t{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        config = RelayConfig(namespace=name)
        asyncio.run(_delete_streams(NATS_URL, [config.stream_name, config.unblinded_stream_name]))


def relay_process(database_url: str, *arguments: str, log: Path) -> subprocess.Popen[bytes]:
    """`trialstack relay` in a process of its own (stdout and stderr into `log`)."""
    script = Path(sys.executable).with_name("trialstack")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "trialstack.cli.main"]
    with log.open("wb") as output:
        return subprocess.Popen(
            [*command, "relay", "--db", database_url, *arguments], stdout=output, stderr=subprocess.STDOUT
        )
