"""`trialstack demo` runs the IRT through the real handlers: every enrolled subject randomized exactly once, kits
dispensed, a shipment quarantined and released, a resupply, an emergency unblinding; and what a blinded monitor
reads of it (API feed, live stream, a subject's audit trail) never holds a subject's arm, while the unblinded
pharmacist's feed does. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.e2e.test_demo_sizes import fast_passwords
from tests.integration.identity.support import bearer, client_class, token_for
from trialstack.api.app import create_app
from trialstack.bootstrap import Platform, bootstrap
from trialstack.cli.main import app
from trialstack.irt.events import RANDOMIZATION_EVENTS, SUPPLY_EVENTS
from trialstack.ledger.registry import is_blinded

runner = CliRunner()
STUDY = "HTN-201"
BASE = f"/api/v1/studies/{STUDY}"
TestClient = client_class()
BLINDED_IRT = sorted(cls.__name__ for cls in (*RANDOMIZATION_EVENTS, *SUPPLY_EVENTS) if is_blinded(cls.__name__))


@pytest.fixture
def demo(database_url: str) -> Iterator[tuple[Platform, dict[str, str]]]:
    with fast_passwords():
        result = runner.invoke(app, ["demo", "--subjects", "24", "--seed", "7", "--db", database_url])
    assert result.exit_code == 0, result.output
    passwords = dict(re.findall(r"│ (demo-[a-z-]+)\s+│ (\S+)\s+│", result.output))
    platform = bootstrap(database_url=database_url)
    yield platform, passwords
    platform.close()


def _count(platform: Platform, sql: str) -> list[tuple[object, ...]]:
    with platform.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def test_the_demo_randomizes_every_enrolled_subject_once_and_keeps_the_arms_from_blinded_readers(
    demo: tuple[Platform, dict[str, str]],
) -> None:
    """One demo per backend, then both checks (the demo is what takes the time)."""
    _every_enrolled_subject_randomized_once(demo[0])
    _a_blinded_monitor_never_reads_an_allocation_while_the_pharmacist_does(*demo)


def _every_enrolled_subject_randomized_once(platform: Platform) -> None:
    enrolled = {row[0] for row in _count(platform, "SELECT stream_id FROM ledger_event WHERE event_type = "
                                                   "'SubjectEnrolled'")}  # fmt: skip
    randomized = Counter(
        orjson.loads(str(row[0]))["subject_id"]
        for row in _count(platform, "SELECT payload FROM ledger_event WHERE event_type = 'SubjectRandomized'")
    )
    assert enrolled and {f"{STUDY}/{s}" for s in randomized} == enrolled
    assert set(randomized.values()) == {1}
    counted = _count(platform, "SELECT event_type, count(*) FROM ledger_event WHERE stream_type = 'irt' GROUP BY 1")
    kinds = {str(kind): int(str(count)) for kind, count in counted}
    assert kinds["TreatmentAllocated"] == len(randomized)
    for needed in ("KitDispensed", "EmergencyUnblinded", "ResupplyTriggered", "KitsQuarantined", "KitsReleased"):
        assert kinds.get(needed, 0) >= 1, f"no {needed} in the demo's ledger: {kinds}"


def _a_blinded_monitor_never_reads_an_allocation_while_the_pharmacist_does(
    platform: Platform, passwords: dict[str, str]
) -> None:
    arms = ("ZEL", "PBO", "Zelvoprin 20 mg once daily", "Matching placebo once daily")
    with TestClient(create_app(platform)) as client:
        monitor = bearer(token_for(platform, "demo-monitor"))
        pharmacist = bearer(token_for(platform, "demo-supply-manager"))
        seen: dict[str, list[dict[str, object]]] = {"monitor": [], "pharmacist": []}
        for who, headers in (("monitor", monitor), ("pharmacist", pharmacist)):
            after = 0
            more = True
            while more:
                page = client.get(f"{BASE}/events", params={"after": after, "limit": 500}, headers=headers)
                assert page.status_code == 200, page.text
                seen[who] += page.json()["events"]
                after, more = page.json()["next_after"], page.json()["more"]
        monitor_types = {e["event_type"] for e in seen["monitor"]}
        assert "SubjectRandomized" in monitor_types and not monitor_types & set(BLINDED_IRT)
        for event in seen["monitor"]:
            if event["event_type"] != "StudyVersionPublished":  # the protocol itself names its arms
                flat = orjson.dumps(event["payload"]).decode()
                assert not any(arm in flat for arm in arms), event
        allocations = [e for e in seen["pharmacist"] if e["event_type"] == "TreatmentAllocated"]
        assert allocations and len(allocations) == sum(e["event_type"] == "SubjectRandomized" for e in seen["monitor"])

        stream = client.get(f"{BASE}/events/stream", params={"max_seconds": 0}, headers=monitor)
        assert stream.status_code == 200 and "SubjectRandomized" in stream.text
        assert not any(name in stream.text for name in BLINDED_IRT)

        unblinded = next(e for e in seen["monitor"] if e["event_type"] == "EmergencyUnblinded")
        subject = str(unblinded["payload"]["subject_id"])  # type: ignore[index]
        assert client.post("/login", data={"username": "demo-monitor", "password": passwords["demo-monitor"],
                                           "next": "/"}, follow_redirects=False).status_code == 303  # fmt: skip
        audit = client.get(f"/studies/{STUDY}/subjects/{subject}/audit")
        assert audit.status_code == 200 and "Randomized: number" in audit.text and "Emergency unblinding" in audit.text
        assert not any(arm in audit.text for arm in ("Allocated to", *arms)), "the monitor's audit trail shows an arm"
