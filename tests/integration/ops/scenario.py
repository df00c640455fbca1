"""A small study for the KRI tests, through the real handlers: an enrolled subject at 0101 with a serious AE and a
mild one that starts before consent (an edit check fails), a late Week 2 (out of its window, so capture opens a
query), a manual query answered and closed in two days, one form verified; a screen failure at 0102. The clock
ends on 2026-03-20."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.enrolling import COORDINATOR, enrolled_subject, screened_subject
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers as capture
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.clock import FixedClock
from trialstack.ledger.envelope import Actor
from trialstack.queries import commands as qcmd
from trialstack.queries import handlers as queries

STUDY = "HTN-201"
MONITOR = Actor("user:mona", "monitor")
AS_OF = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
SERIOUS_AE = {
    "AETERM": "Syncope", "AESTDAT": "2026-01-20", "AEONGO": "Y", "AESER": "Y", "AESEV": "SEVERE",
    "AEREL": "POSSIBLY RELATED", "AEACN": "DRUG INTERRUPTED", "AEOUT": "NOT RECOVERED/NOT RESOLVED",
}  # fmt: skip


@dataclass(frozen=True)
class Trial:
    enrolled: str
    failed: str
    manual_query: str


def _run(platform: Platform, actor: Actor, handler: Any, *args: Any) -> Any:
    with platform.unit_of_work(actor) as uow:
        result = handler(uow, STUDY, *args)
        uow.commit()
    return result


def conduct(platform: Platform, clock: FixedClock) -> Trial:
    """The trial above, on the loaded demo study; the clock ends at AS_OF."""
    enrolled = enrolled_subject(platform, "0101", "2026-01-05")
    failed = screened_subject(platform, "0102", "2026-01-05")
    _run(platform, COORDINATOR, capture.screen_fail_subject, cmd.ScreenFailSubject(failed, "2026-01-05", "IN01"))
    clock.set(datetime(2026, 1, 21, 10, 0, tzinfo=UTC))
    items = {item: cmd.ItemInput(value) for item, value in SERIOUS_AE.items()}
    _run(platform, COORDINATOR, capture.save_form, cmd.SaveForm(enrolled, FormKey("AE", None, 1), items))
    before_consent = {**SERIOUS_AE, "AETERM": "Headache", "AESTDAT": "2026-01-01", "AESER": "N", "AESEV": "MILD"}
    items = {item: cmd.ItemInput(value) for item, value in before_consent.items()}
    _run(platform, COORDINATOR, capture.save_form, cmd.SaveForm(enrolled, FormKey("AE", None, 2), items))
    clock.set(datetime(2026, 2, 10, 10, 0, tzinfo=UTC))
    late = cmd.RecordVisitDate(enrolled, VisitKey("WEEK2"), "2026-02-09")
    _run(platform, COORDINATOR, capture.record_visit_date, late)
    _run(
        platform,
        MONITOR,
        capture.verify_source_data,
        cmd.VerifySourceData(enrolled, FormKey("DM", VisitKey("SCREENING"))),
    )
    opened = _run(platform, MONITOR, queries.open_manual_query, "0101",
                  qcmd.OpenQuery(enrolled, "SCREENING.VS", "PULSE", "Please confirm the pulse."))  # fmt: skip
    query_id = str(opened[0].payload["query_id"])
    clock.set(datetime(2026, 2, 11, 10, 0, tzinfo=UTC))
    _run(platform, COORDINATOR, queries.answer_query, qcmd.AnswerQuery(query_id, "Confirmed from the source."))
    clock.set(datetime(2026, 2, 12, 10, 0, tzinfo=UTC))
    _run(platform, MONITOR, queries.close_query, qcmd.CloseQuery(query_id, "Confirmed."))
    clock.set(AS_OF)
    return Trial(enrolled, failed, query_id)
