"""`trialstack labs listen` as a real process on SQLite and PostgreSQL: AA only after the commit, AE for refused
results (nothing stored), AR for what is not an ORU^R01, and a listener killed before or after its commit stores
the resent message exactly once (deterministic kill points, the test-only TRIALSTACK_TEST_MLLP_CRASH hook)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.enrolling import STUDY, enrolled_subject
from tests.integration.labs.lab_study import publish_lab_study
from trialstack.bootstrap import Platform
from trialstack.integration.mllp import CRASH_HOOK
from trialstack.labs import readmodel as rm
from trialstack.ledger.schema import ledger_event
from trialstack.standards.hl7_oru import END_BLOCK, mllp_frame

TRIALSTACK = str(Path(sys.executable).with_name("trialstack"))
GUARD_SECONDS = 60  # a hang guard only: nothing asserts on time


class Listener:
    def __init__(self, url: str, crash: str | None = None) -> None:
        env = {key: value for key, value in os.environ.items() if key != CRASH_HOOK}
        if crash is not None:
            env[CRASH_HOOK] = crash
        self.process = subprocess.Popen(
            [TRIALSTACK, "labs", "listen", "--study", STUDY, "--source", "CENTRAL", "--port", "0", "--db", url],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True,
        )  # fmt: skip
        assert self.process.stderr is not None
        self.log: list[str] = []
        while True:
            line = self.process.stderr.readline()
            if not line:
                pytest.fail(f"the listener exited before listening: {''.join(self.log)}")
            self.log.append(line)
            found = re.search(r"listening on ([\d.]+):(\d+)", line)
            if found:
                self.port = int(found.group(2))
                return

    def send(self, message: str) -> str | None:
        """The ACK, or None when the connection closed without one."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=GUARD_SECONDS) as connection:
            connection.sendall(mllp_frame(message.encode()))
            received = b""
            try:
                while END_BLOCK not in received:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return None
                    received += chunk
            except ConnectionResetError:
                return None
        return received.strip(b"\x0b\x1c\r").decode()

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        _out, err = self.process.communicate(timeout=GUARD_SECONDS)
        return self.process.returncode, "".join(self.log) + err


@pytest.fixture
def subject(platform: Platform) -> str:
    publish_lab_study(platform)
    return enrolled_subject(platform)


@pytest.fixture
def listener(database_url: str, subject: str) -> Iterator[Listener]:
    running = Listener(database_url)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def oru(control: str, patient: str, *, potassium_code: str = "2823-3") -> str:
    return "\r".join([
        f"MSH|^~\\&|LIS|CENTRAL|TRIALSTACK|HTN|20260105103000||ORU^R01^ORU_R01|{control}|P|2.5.1",
        f"PID|||{patient}^^^LIS^MR||||19700301|M",
        f"OBR|1||ACC-{control}|24320-4^Basic metabolic panel^LN|||20260105083000",
        f"OBX|1|NM|{potassium_code}^Potassium^LN||4.2|mmol/L|3.5-5.1|N|||F|||20260105083000",
        "OBX|2|NM|2160-0^Creatinine^LN||97|umol/L|||||F|||20260105083000",
    ])  # fmt: skip


def msa(ack: str | None) -> str:
    assert ack is not None, "no acknowledgment"
    return next(segment for segment in ack.split("\r") if segment.startswith("MSA|")).split("|")[1]


def received_events(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        statement = select(func.count()).where(ledger_event.c.event_type == "LabResultReceived")
        return int(connection.execute(statement).scalar_one())


def stored(platform: Platform, subject: str) -> int:
    with platform.engine.connect() as connection:
        return len(rm.results_of_subject(connection, STUDY, subject))


def test_accepted_refused_and_rejected_messages_are_acknowledged_after_the_commit(
    platform: Platform, subject: str, listener: Listener
) -> None:
    ack = listener.send(oru("MSG-1", subject))
    assert msa(ack) == "AA" and "MSG-1" in (ack or "")
    assert stored(platform, subject) == 2 and received_events(platform) == 2
    assert msa(listener.send(oru("MSG-1", subject))) == "AA"  # a resend: a repeat, stored once
    assert received_events(platform) == 2

    refused = listener.send(oru("MSG-2", subject, potassium_code="99999-9"))  # a subject's unknown test
    assert msa(refused) == "AE"
    err = next(segment for segment in (refused or "").split("\r") if segment.startswith("ERR|"))
    assert "OBX^1^3" in err and "99999-9" in (refused or "")
    with platform.engine.connect() as connection:
        assert rm.triage_items(connection, STUDY) == []  # its valid creatinine was not stored either

    not_oru = listener.send("MSH|^~\\&|ADT|H|TS|H|20260105||ADT^A01|MSG-3|P|2.5.1\rPID|||X")
    assert msa(not_oru) == "AR" and "MSH^1^9" in (not_oru or "")
    assert msa(listener.send("PID|||no header")) == "AR"

    code, log = listener.stop()
    assert code == 0
    assert re.search(r"MSG-1 AA .*received=2", log) and "MSG-2 AE" in log and "MSG-3 AR" in log
    assert received_events(platform) == 2


@pytest.mark.parametrize("crash", ["kill-after-parse", "kill-after-commit"])
def test_a_listener_killed_before_its_ack_stores_the_resent_message_once(
    platform: Platform, subject: str, database_url: str, crash: str
) -> None:
    dying = Listener(database_url, crash)
    assert dying.send(oru("MSG-9", subject)) is None
    assert dying.process.wait(timeout=GUARD_SECONDS) == -signal.SIGKILL
    assert received_events(platform) == (2 if crash == "kill-after-commit" else 0)
    restarted = Listener(database_url)
    try:
        assert msa(restarted.send(oru("MSG-9", subject))) == "AA"
        assert msa(restarted.send(oru("MSG-9", subject))) == "AA"
    finally:
        assert restarted.stop()[0] == 0
    assert stored(platform, subject) == 2 and received_events(platform) == 2
