"""The crash writer's journal: what each unit of work was about to commit, and which commits were acknowledged.

A line `{"intent": CID, "events": [[study, seq, hash], ...]}` is written and fsync'ed before the transaction
commits, once every event of the unit (policy reactions included) is decided; `{"ack": CID}` is written and
fsync'ed after `commit()` returned. A writer killed with SIGKILL may leave a torn last line; it is ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from trialstack.ledger.envelope import RecordedEvent

EventKey = tuple[str, int, str]  # study_id, study_seq, hash


@dataclass
class Intent:
    correlation_id: str
    events: tuple[EventKey, ...]
    acknowledged: bool = False


@dataclass
class JournalContents:
    ready: bool = False
    intents: dict[str, Intent] = field(default_factory=dict)
    torn_tail: bool = False
    problems: list[str] = field(default_factory=list)


class Journal:
    """Append-only, one JSON object a line, each line fsync'ed before `write` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, record: dict[str, object]) -> None:
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        written = 0
        while written < len(data):
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)

    def ready(self) -> None:
        self.write({"ready": os.getpid()})

    def intent(self, correlation_id: str, events: list[RecordedEvent]) -> None:
        self.write({"intent": correlation_id, "events": [[e.study_id, e.study_seq, e.hash] for e in events]})

    def ack(self, correlation_id: str) -> None:
        self.write({"ack": correlation_id})

    def close(self) -> None:
        os.close(self._fd)


def read_journal(path: Path) -> JournalContents:
    """Parse a journal; a malformed line is a problem unless it is the last one (torn by the kill)."""
    contents = JournalContents()
    if not path.exists():
        return contents
    lines = path.read_bytes().split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    if tail:
        contents.torn_tail = True
    for number, line in enumerate(complete, start=1):
        try:
            record = json.loads(line)
        except ValueError:
            contents.problems.append(f"{path.name}:{number}: not a JSON line")
            continue
        if "ready" in record:
            contents.ready = True
        elif "intent" in record:
            cid = str(record["intent"])
            events = tuple((str(s), int(q), str(h)) for s, q, h in record["events"])
            contents.intents[cid] = Intent(cid, events)
        elif "ack" in record:
            cid = str(record["ack"])
            if cid not in contents.intents:
                contents.problems.append(f"{path.name}:{number}: acknowledgement of {cid} without its intent")
            else:
                contents.intents[cid].acknowledged = True
    return contents
