"""Questionnaires in the simulation (eCOA/ePRO): visit instruments on the site tablet, the daily diary on the
participant's phone, the periodic sweep, clinical alerts and their acknowledgement.

Everything goes through the ecoa handlers, one unit of work per command, like the API:

- At each visit that schedules instruments (the demo: PHQ-9 and GAD-7 at Day 1, Week 4 and Week 12) the
  coordinator hands the tablet over in the morning of the visit day (local time); the participant answers. A
  participant with an account confirms with their own account (the answers are theirs), otherwise the
  coordinator attests. Answers are drawn from a per-subject symptom burden; an instrument's clinical alert fires
  on chosen submissions only (the demo: PHQ-9 item 9 > 0, on about one submission in the first few and one
  later), the site's investigator acknowledges the first with a note, later ones stay open for the site to see.
- Diary keepers (every subject with a participant account, plus every `DIARY_EVERY`-th enrolled subject, invited
  to the app at the visit the diary starts from) complete each entry at a random time inside its window, in the
  site's time zone: most of them most evenings (a little less often as the week goes on), a few poor
  compliers about half of them. Some entries are done
  offline: completed inside the window, sent hours later (the window is about `completed_at`; receipt may be
  late). Now and then the app sends an entry twice with the same `client_id` (the second is a no-op).
- The sweep (`sweep_subject`) runs for each diary keeper every day at noon, local time, while their diary runs:
  what the server's periodic sweep would find for them (no other subject has diary entries to miss).

Its own seeded generator: the rest of the simulation draws what it drew before for a seed.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from trialstack.ecoa import commands as cmd
from trialstack.ecoa import handlers as ecoa
from trialstack.ecoa.schedule import diary_entries
from trialstack.identity.policy import Role
from trialstack.ledger.envelope import Actor
from trialstack.protocol.definition_questionnaires import AnswerType, Instrument, InstrumentItem
from trialstack.protocol.questionnaire_rules import alerts, compile_instrument, score, shown_items

if TYPE_CHECKING:
    from trialstack.simulation.simulator import Simulation, SubjectRun

DIARY_EVERY = 3
"""Besides the participants with an account, every n-th enrolled subject keeps the diary (bounds the demo's time)."""
POOR_COMPLIERS = 0.1
OFFLINE = 0.12
RESENDS = 0.05
TABLET_FROM = time(9, 30)
"""Local time the site hands the tablet over on a visit day (the first instrument; the next follow)."""
SWEEP_AT = time(12, 0)
FIRST_ALERT = (0, 2)
"""The alerting submission is the n-th of an instrument with alerts, n drawn here; a second one later."""
LATER_ALERT = (20, 40)
ACKNOWLEDGEMENT = (
    "Called the participant the same day: no current plan or intent of self-harm; safety plan reviewed and "
    "referred to their physician."
)


@dataclass
class Keeper:
    """A subject keeping a diary: how reliably they fill it in."""

    compliance: float
    burden: float
    poor: bool = False

    def chance(self, index: int) -> float:
        """That the entry `index` (0: the first day) is completed: good compliers tire a little as days pass."""
        if self.poor:
            return self.compliance
        return 1 - (1 - self.compliance) * (0.3 + 0.25 * min(index, 10))


@dataclass
class DeskStats:
    keepers: int = 0
    enrolled: int = 0
    offline: int = 0
    resends: int = 0
    blocked: int = 0
    alerts: list[tuple[str, str, str]] = field(default_factory=list)
    """(subject, alert, client id) of every clinical alert raised, in order."""


class QuestionnaireDesk:
    """The questionnaire work of one simulation."""

    def __init__(self, simulation: Simulation) -> None:
        self.sim = simulation
        self.rng = random.Random(f"ecoa:{simulation.seed}")
        questionnaires = simulation.definition.questionnaires
        self.instruments: tuple[Instrument, ...] = questionnaires.instruments if questionnaires else ()
        self.stats = DeskStats()
        self._burden: dict[str, float] = {}
        self._keepers: dict[str, Keeper] = {}
        self._alerting = 0
        first = self.rng.randint(*FIRST_ALERT)
        self._alert_at = {first, first + self.rng.randint(*LATER_ALERT)}

    @property
    def active(self) -> bool:
        return bool(self.instruments)

    # visits -----------------------------------------------------------------------------------------------
    def at_visit(self, run: SubjectRun, visit_id: str, on: date, enrolled: bool = False) -> None:
        """The visit took place: its instruments on the tablet that morning; a diary starting here is planned."""
        if not self.active:
            return
        if enrolled:
            self.stats.enrolled += 1
        zone = self._zone(run)
        moment = datetime.combine(on, TABLET_FROM, zone)
        for instrument in self.instruments:
            if visit_id not in instrument.schedule.visits:
                continue
            moment = max(moment, self.sim.clock.now() + timedelta(minutes=20))
            self.sim.at(moment, partial(self._on_tablet, run, instrument, visit_id))
            moment += timedelta(minutes=self.rng.randint(6, 15))
        diaries = [i for i in self.instruments if i.schedule.diary and i.schedule.diary.from_visit == visit_id]
        if diaries and self._keeps_diary(run, enrolled):
            for instrument in diaries:
                self._plan_diary(run, instrument, visit_id, on)

    def _zone(self, run: SubjectRun) -> ZoneInfo:
        site = next((s for s in self.sim.definition.sites if s.id == run.site_id), None)
        return ZoneInfo(site.time_zone if site is not None else "UTC")

    def _burden_of(self, run: SubjectRun) -> float:
        if run.subject_id not in self._burden:
            self._burden[run.subject_id] = self.rng.choice((0.05, 0.1, 0.15, 0.2, 0.3, 0.45))
        return self._burden[run.subject_id]

    def _consented(self, run: SubjectRun) -> bool:
        """Whether the consent gate lets questionnaires through; at a visit the site re-consents on the spot."""
        if run.withdrawn or run.withdrawn_documents:
            return False
        if run.reconsent_due:
            self.sim.consent.obtain(run)
        return not run.reconsent_due

    def _on_tablet(self, run: SubjectRun, instrument: Instrument, visit_id: str) -> None:
        if not self._consented(run):
            self.stats.blocked += 1
            return
        coordinator = self.sim.staff.coordinator(run.site_id)
        if run.username is not None:  # confirmed with the participant's own password: the answers are theirs
            actor, username = Actor(f"user:{run.username}", Role.PARTICIPANT.value), run.username
        else:  # the coordinator attests
            actor, username = coordinator, coordinator.id.removeprefix("user:")
        answers = self._answers(instrument, self._burden_of(run), self.sim.clock.now().date())
        completed = self.sim.clock.now().astimezone(self._zone(run)).isoformat(timespec="seconds")
        command = cmd.SubmitQuestionnaire(
            run.subject_id, instrument.id, visit_id, self._client_id(), answers, completed, "site_tablet"
        )
        self._submit(run, actor, username, command)

    # the diary --------------------------------------------------------------------------------------------
    def _keeps_diary(self, run: SubjectRun, enrolled: bool) -> bool:
        if run.username is None and (not enrolled or (self.stats.enrolled - 1) % DIARY_EVERY != 0):
            return False
        if run.username is None:
            self.sim.consent.account(run, "en")  # the site invites the subject to the app for the diary
        if run.username is None:
            return False
        self.stats.keepers += 1
        poor = self.rng.random() < POOR_COMPLIERS
        self._keepers[run.subject_id] = Keeper(
            self.rng.uniform(0.35, 0.6) if poor else self.rng.uniform(0.88, 0.99), self._burden_of(run), poor
        )
        return True

    def _plan_diary(self, run: SubjectRun, instrument: Instrument, visit_id: str, on: date) -> None:
        diary = instrument.schedule.diary
        if diary is None:
            return
        zone = self._zone(run)
        until = on + timedelta(days=diary.days_after if diary.days_after is not None else 27)
        keeper = self._keepers[run.subject_id]
        grace = timedelta(hours=diary.grace_hours)
        now = self.sim.clock.now()
        for index, entry in enumerate(diary_entries(instrument, {visit_id: on}, zone, until)):
            if entry.closes <= now:
                continue
            sweep = datetime.combine(entry.closes.date() + timedelta(days=1), SWEEP_AT, zone)
            self.sim.at(max(sweep, entry.closes + timedelta(minutes=30)), partial(self._sweep, run))
            if self.rng.random() >= keeper.chance(index):
                continue
            opens = max(entry.opens, now + timedelta(minutes=5))
            core = max(entry.closes - grace, opens + timedelta(minutes=1))
            late = self.rng.random() < 0.05 and grace
            start, end = (core, entry.closes) if late else (opens, core)
            span = max(0, int((end - start).total_seconds()) - 120)
            completed = start + timedelta(seconds=self.rng.randint(0, span))
            offline = self.rng.random() < OFFLINE
            sent = completed + (timedelta(hours=self.rng.randint(1, 10), minutes=self.rng.randint(0, 59))
                                if offline else timedelta(seconds=self.rng.randint(2, 40)))  # fmt: skip
            command = cmd.SubmitQuestionnaire(
                run.subject_id, instrument.id, entry.entry, self._client_id(),
                self._answers(instrument, keeper.burden, entry.day), completed.isoformat(timespec="seconds"),
            )  # fmt: skip
            self.sim.at(sent, partial(self._on_phone, run, command, offline))
            if self.rng.random() < RESENDS:  # the app did not see the answer and sends again, same client id
                self.sim.at(sent + timedelta(minutes=self.rng.randint(1, 90)), partial(self._on_phone, run, command))

    def _on_phone(self, run: SubjectRun, command: cmd.SubmitQuestionnaire, offline: bool = False) -> None:
        username = run.username
        if username is None or run.withdrawn or run.withdrawn_documents:
            return
        if run.reconsent_due:  # the app asks for the new consent first: the entry waits (and may be missed)
            self.stats.blocked += 1
            return
        actor = Actor(f"user:{username}", Role.PARTICIPANT.value)
        committed = self._submit(run, actor, username, command)
        if committed is not None and not committed:
            self.stats.resends += 1
        elif committed and offline:
            self.stats.offline += 1

    def _sweep(self, run: SubjectRun) -> None:
        self.sim._do(ecoa.SYSTEM_ECOA, ecoa.sweep_subject, run.subject_id)

    # submitting, alerts -----------------------------------------------------------------------------------
    def _submit(
        self, run: SubjectRun, actor: Actor, username: str, command: cmd.SubmitQuestionnaire
    ) -> list[object] | None:
        committed = self.sim._do(actor, ecoa.submit_questionnaire, username, command)
        for event in committed or ():
            if event.event_type == "ClinicalAlertRaised":
                raised = (run.subject_id, str(event.payload["alert"]), str(event.payload["client_id"]))
                self.stats.alerts.append(raised)
                if len(self.stats.alerts) == 1:  # the investigator acknowledges the first; later ones stay open
                    self.sim.at(
                        self.sim.clock.now() + timedelta(hours=self.rng.randint(1, 5), minutes=self.rng.randint(0, 59)),
                        partial(self._acknowledge, run, raised[1], raised[2]),
                    )
        return list(committed) if committed is not None else None

    def _acknowledge(self, run: SubjectRun, alert: str, client_id: str) -> None:
        investigator = self.sim.staff.investigator(run.site_id)
        command = cmd.AcknowledgeClinicalAlert(run.subject_id, alert, client_id, ACKNOWLEDGEMENT)
        self.sim._do(investigator, ecoa.acknowledge_alert, investigator.id.removeprefix("user:"), command)

    def _client_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # answers ----------------------------------------------------------------------------------------------
    def _answers(self, instrument: Instrument, burden: float, day: date) -> dict[str, str]:
        """Answers for every item shown, drawn from the subject's burden; a clinical alert only where chosen."""
        compiled = compile_instrument(instrument)
        if not instrument.alerts:
            return self._draw(instrument, burden, day)
        chosen = self._alerting in self._alert_at
        self._alerting += 1
        for attempt in range(60):
            level = min(0.95, burden + 0.1 * attempt) if chosen else burden * (1 - attempt / 10)
            answers = self._draw(instrument, max(level, 0.0), day)
            raised = bool(alerts(compiled, answers, score(compiled, answers)))
            if raised == chosen:
                return answers
        return self._draw(instrument, 0.0, day)

    def _draw(self, instrument: Instrument, burden: float, day: date) -> dict[str, str]:
        compiled = compile_instrument(instrument)
        answers: dict[str, str] = {}
        for item in instrument.items:
            if item.show_if is not None and item.id not in {i.id for i in shown_items(compiled, answers)}:
                continue
            value = self._value(item, burden, day)
            if value is not None:
                answers[item.id] = value
        return answers

    def _value(self, item: InstrumentItem, burden: float, day: date) -> str | None:
        rng = self.rng
        if not item.required and rng.random() < 0.9:
            return None
        if item.type in (AnswerType.SINGLE_CHOICE, AnswerType.MULTIPLE_CHOICE):
            codes = [option.code for option in item.options]
            if not codes:
                return None
            if len(codes) == 2 or not all(option.value is not None for option in item.options):
                return codes[0] if rng.random() > burden / 3 else rng.choice(codes)
            if rng.random() >= burden:
                return codes[0]
            return codes[min(len(codes) - 1, 1 + int(rng.random() * rng.random() * (len(codes) - 1)))]
        if item.type in (AnswerType.NUMERIC_RATING, AnswerType.VISUAL_ANALOGUE):
            low, high = item.bounds
            if item.type is AnswerType.VISUAL_ANALOGUE:  # how well: high is good
                return str(max(low, min(high, round(high - (high - low) * (burden + rng.uniform(-0.1, 0.3))))))
            return str(low if rng.random() >= burden * 1.5 else rng.randint(low, low + (high - low) // 2))
        if item.type is AnswerType.TIME:
            return f"{rng.randint(7, 9):02d}:{rng.randrange(0, 60, 5):02d}"
        if item.type is AnswerType.DATE:
            return day.isoformat()
        return rng.choice(("Slept badly.", "Felt fine.", "Busy day at work.", "A bit tired."))
