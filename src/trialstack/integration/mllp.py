"""The live HL7 v2 MLLP listener: a laboratory's ORU^R01 messages in, one committed unit of work and one ACK each.

The ACK is written only after the commit, so an AA always means "stored": a listener killed between the commit
and the ACK leaves the laboratory without an answer, it resends, and the ledger's (source, external_id) makes the
resend a repeat that is stored once and still answered AA. AE says the message parsed but its results were refused
(nothing written; MSA-3 and ERR name the first refusal), AR that it cannot be parsed or is not an ORU^R01.
The database work is blocking, so each message runs in a thread (`asyncio.to_thread`) while the loop keeps
reading other connections; SIGTERM/SIGINT stop accepting, the message in hand is finished and acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from trialstack.bootstrap import Platform
from trialstack.errors import NotFound, TrialStackError
from trialstack.labs import commands as cmd
from trialstack.labs.handlers import LabImportRefused, LabImportReport, receive_results, study_labs
from trialstack.ledger.envelope import Actor
from trialstack.standards.hl7_oru import (
    APPLICATION_INTERNAL_ERROR,
    DATA_TYPE_ERROR,
    TABLE_VALUE_NOT_FOUND,
    ErrorLocation,
    MllpDecoder,
    ack_for,
    build_ack,
    mllp_frame,
    parse_oru,
)
from trialstack.standards.lab_results import LabParseError

READ_BYTES: Final = 65_536
CRASH_HOOK: Final = "TRIALSTACK_TEST_MLLP_CRASH"
"""Test-only: `kill-after-parse` or `kill-after-commit` makes the listener SIGKILL itself at that point, so the
crash tests are deterministic. Any other value (or none) does nothing."""
_CRASH_POINTS: Final = frozenset({"kill-after-parse", "kill-after-commit"})
_SEGMENT_IN_LOCATION: Final = re.compile(r"\b([A-Z][A-Z0-9]{2}) (\d+) \(segment \d+\)")
# Which OBX field a refusal of the labs context is about (the context names fields in words).
_OBX_FIELDS: Final = {"test code": (3, TABLE_VALUE_NOT_FOUND), "unit": (6, TABLE_VALUE_NOT_FOUND),
                      "value": (5, DATA_TYPE_ERROR)}  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What one message came to: the ACK to send and the log line."""

    ack: str
    line: str


def _crash_point(point: str) -> None:
    if os.environ.get(CRASH_HOOK) == point and point in _CRASH_POINTS:
        os.kill(os.getpid(), signal.SIGKILL)


def _control_id(text: str) -> str:
    fields = text.lstrip("\ufeff\r\n").split("\r", 1)[0].split("\n", 1)[0].split("|")
    return fields[9] if len(fields) > 9 and fields[0] == "MSH" and fields[9] else "?"


def _counts(report: LabImportReport) -> str:
    return (f"results={report.rows} received={report.received} corrected={report.corrected} "
            f"repeated={report.repeated} triage={report.unmatched} alerts={report.alerts} "
            f"refused={report.refused}")  # fmt: skip


def _refusal_ack(text: str, report: LabImportReport) -> str:
    """AE naming the first refused result: its OBX (ERR-2) and, where the context says which, the field."""
    first = report.errors[0] if report.errors else None
    if first is None:
        return build_ack(text, "AE", "results refused", error_code=APPLICATION_INTERNAL_ERROR)
    found = _SEGMENT_IN_LOCATION.search(first.location)
    field, code = _OBX_FIELDS.get(first.field or "", (None, APPLICATION_INTERNAL_ERROR))
    location = ErrorLocation(found.group(1), int(found.group(2)), field) if found else None
    reason = f"{first.field}: {first.reason}" if first.field else first.reason
    return build_ack(text, "AE", f"{report.refused} of {report.rows} results refused, nothing stored; {reason}",
                     location, error_code=code)  # fmt: skip


def decode_message(raw: bytes) -> str:
    """HL7 v2 text: UTF-8 when it is, else Latin-1 (the v2 default character set)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def handle_message(platform: Platform, study: str, source: str, raw: bytes) -> Outcome:
    """Parse, receive in one unit of work, commit, and only then say what to acknowledge (blocking)."""
    text = decode_message(raw)
    control = _control_id(text)
    try:
        observations = parse_oru(text, f"message {control}")
    except LabParseError as error:
        code = getattr(error, "acknowledgment", "AE")
        return Outcome(ack_for(text, error), f"{control} {code} unparsed: {error.message}")
    _crash_point("kill-after-parse")
    try:
        with platform.unit_of_work(Actor(f"feed:{source}", "system")) as uow:
            report = receive_results(uow, study, cmd.ReceiveLabResults(source, observations, False))
            uow.commit()
    except LabImportRefused as refused:
        return Outcome(_refusal_ack(text, refused.report), f"{control} AE refused {_counts(refused.report)}")
    except TrialStackError as error:
        ack = build_ack(text, "AE", error.message, error_code=APPLICATION_INTERNAL_ERROR)
        return Outcome(ack, f"{control} AE error: {error.message}")
    _crash_point("kill-after-commit")
    return Outcome(build_ack(text, "AA"), f"{control} AA {_counts(report)}")


class MllpListener:
    """An asyncio MLLP server; `stop` ends it gracefully (no new connection, messages in hand finished)."""

    def __init__(self, platform: Platform, study: str, source: str, log: Callable[[str], None]) -> None:
        self.platform = platform
        self.study = study
        self.source = source
        self.log = log
        self.stop = asyncio.Event()
        self._connections: set[asyncio.Task[None]] = set()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        decoder = MllpDecoder()
        stopping = asyncio.create_task(self.stop.wait())
        try:
            while not self.stop.is_set():
                reading = asyncio.create_task(reader.read(READ_BYTES))
                await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()
                    break
                data = reading.result()
                if not data:
                    break
                try:
                    messages = decoder.feed(data)
                except LabParseError as error:
                    self.log(f"? AR dropped connection: {error.message}")
                    break
                for raw in messages:  # finished even when a stop arrives meanwhile: each is committed, then ACKed
                    outcome = await asyncio.to_thread(handle_message, self.platform, self.study, self.source, raw)
                    self.log(outcome.line)
                    writer.write(mllp_frame(outcome.ack.encode("utf-8")))
                    await writer.drain()
        except (ConnectionError, OSError) as error:
            self.log(f"connection lost: {error}")
        finally:
            stopping.cancel()
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            if task is not None:
                self._connections.discard(task)

    async def run(self, host: str, port: int) -> None:
        server = await asyncio.start_server(self._connection, host, port)
        bound = server.sockets[0].getsockname()
        self.log(f"listening on {bound[0]}:{bound[1]} for study {self.study}, laboratory {self.source}")
        async with server:
            await self.stop.wait()
            server.close()  # no new connections; those open finish the message in hand
            if self._connections:
                await asyncio.gather(*self._connections, return_exceptions=True)
        self.log("stopped")


def serve(platform: Platform, study: str, source: str, host: str, port: int, log: Callable[[str], None]) -> None:
    """Run the listener until SIGTERM or SIGINT (returns normally: exit 0)."""

    with platform.unit_of_work(Actor(f"feed:{source}", "system")) as uow:  # refuse to start on a wrong study
        _version, labs = study_labs(uow, study)
    if labs.source(source) is None:
        known = ", ".join(known.id for known in labs.sources)
        raise NotFound(f"unknown laboratory '{source}' (the study's labs.sources: {known})", field="source")

    async def main() -> None:
        listener = MllpListener(platform, study, source, log)
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, listener.stop.set)
        await listener.run(host, port)

    asyncio.run(main())
