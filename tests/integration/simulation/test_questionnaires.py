"""The simulation's questionnaires, read back from the ledger: visit instruments on the tablet, diaries kept in
their windows (some sent offline, some resent), the sweep's missed entries and compliance alerts, a PHQ-9 item 9
alert acknowledged and a later one left open; every total is the sum of its items; nothing refused by eCOA.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tests.conftest import REPO_ROOT
from tests.integration.capture.conftest import STUDY
from trialstack.bootstrap import Platform
from trialstack.cli.demo import consent_amendment
from trialstack.ecoa.schedule import find_entry
from trialstack.ledger.schema import ledger_event
from trialstack.protocol.definition import StudyDefinition
from trialstack.simulation.simulator import Simulation

ECOA_HANDLERS = ("submit_questionnaire", "sweep_subject", "acknowledge_alert")
Ledger = list[tuple[str, str, dict[str, Any]]]


def _ledger(platform: Platform) -> Ledger:
    statement = select(ledger_event.c.event_type, ledger_event.c.actor_id, ledger_event.c.payload).order_by(
        ledger_event.c.id
    )
    with platform.engine.connect() as connection:
        rows = connection.execute(statement).all()
    return [
        (kind, actor, payload if isinstance(payload, dict) else json.loads(payload)) for kind, actor, payload in rows
    ]


def test_the_simulated_questionnaires_read_back_from_the_ledger(
    demo: Platform, demo_definition: StudyDefinition
) -> None:
    """One simulation (30 subjects, the amendment included), three readings of its ledger."""
    amendment = consent_amendment(REPO_ROOT / "studies" / "demo" / "study.yaml", demo_definition)
    simulation = Simulation(demo, STUDY, seed=7, subjects=30, amendment=amendment)
    simulation.run()
    ledger = _ledger(demo)
    _everything_is_there(simulation, ledger)
    _every_total_is_the_sum_of_its_items(ledger)
    _diaries_are_completed_inside_their_window(simulation, ledger, demo_definition)


def _everything_is_there(simulation: Simulation, ledger: Ledger) -> None:
    kinds = Counter(kind for kind, _, _ in ledger)
    for kind in ("QuestionnaireSubmitted", "QuestionnaireScored", "DiaryEntryMissed", "ComplianceAlertRaised",
                 "ClinicalAlertRaised", "ClinicalAlertAcknowledged"):  # fmt: skip
        assert kinds[kind] > 0, kind
    assert kinds["ClinicalAlertAcknowledged"] < kinds["ClinicalAlertRaised"]  # at least one left for the site
    assert not [reason for reason in simulation.refusals if reason.startswith(ECOA_HANDLERS)]
    desk = simulation.questionnaires.stats
    assert desk.keepers > 0 and desk.offline > 0 and desk.resends > 0
    submitted = [payload for kind, _, payload in ledger if kind == "QuestionnaireSubmitted"]
    assert len({payload["client_id"] for payload in submitted}) == len(submitted)  # a resend wrote nothing
    assert {payload["mode"] for payload in submitted} == {"site_tablet", "participant"}
    sweeps = {actor for kind, actor, _ in ledger if kind in ("DiaryEntryMissed", "ComplianceAlertRaised")}
    assert sweeps == {"system:ecoa"}


def _every_total_is_the_sum_of_its_items(ledger: Ledger) -> None:
    answers = {p["client_id"]: {a["item"]: a["value"] for a in p["answers"]}
               for kind, _, p in ledger if kind == "QuestionnaireSubmitted"}  # fmt: skip
    totals: dict[str, list[tuple[dict[str, str], str]]] = defaultdict(list)
    for kind, _, payload in ledger:
        if kind == "QuestionnaireScored":
            (total,) = [s for s in payload["scores"] if s["score"] in ("TOTAL", "SYMPTOMS")]
            assert total["missing"] == 0
            totals[payload["instrument"]].append((answers[payload["client_id"]], total["value"]))
    items = {"PHQ9": [f"PHQ{n:02d}" for n in range(1, 10)], "GAD7": [f"GAD{n:02d}" for n in range(1, 8)],
             "DIARY": ["DIZZY", "HEADACHE"]}  # fmt: skip
    assert set(totals) == set(items)
    for instrument, scored in totals.items():
        for given, total in scored:
            assert Decimal(total) == sum(Decimal(given[item]) for item in items[instrument]), (instrument, given)
    item9 = [given for given, _ in totals["PHQ9"] if given["PHQ09"] != "0"]
    alerted = [p for kind, _, p in ledger if kind == "ClinicalAlertRaised"]
    assert len(item9) == len(alerted) >= 1


def _diaries_are_completed_inside_their_window(
    simulation: Simulation, ledger: Ledger, demo_definition: StudyDefinition
) -> None:
    """Completed inside the window in the participant's time zone; received then or (offline) hours later."""
    diary = demo_definition.instrument("DIARY")
    assert diary is not None
    dates: dict[str, dict[str, Any]] = defaultdict(dict)
    late = 0
    for kind, _, payload in ledger:
        if kind == "VisitDateRecorded":
            dates[payload["subject_id"]][payload["visit"]] = datetime.fromisoformat(payload["visit_date"]).date()
        if kind == "QuestionnaireSubmitted" and payload["instrument"] == "DIARY":
            completed = datetime.fromisoformat(payload["completed_at"])
            received = datetime.fromisoformat(payload["received_at"].replace("Z", "+00:00"))
            zone = ZoneInfo(payload["time_zone"])
            entry = find_entry(diary, payload["entry"], dates[payload["subject_id"]], zone, received.date())
            assert entry is not None and entry.opens <= completed <= entry.closes
            assert received >= completed
            late += (received - completed).total_seconds() > 3600
    assert late == simulation.questionnaires.stats.offline > 0
