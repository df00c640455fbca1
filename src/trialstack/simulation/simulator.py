"""A deterministic simulation of a study's conduct, run through the same command handlers as real users.

Subjects are screened over several weeks; each visit, form save, query answer, correction, SDV and lock is an
action on one timeline, executed in time order with the platform's clock set to the action's moment. The same
seed gives the same sequence of commands, so the same read models.
"""

from __future__ import annotations

import heapq
import itertools
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers as capture
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.clock import FixedClock
from trialstack.errors import DomainRuleViolation, TrialStackError
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ops.handlers import SYSTEM_OPS, check_kris
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.definition import StudyDefinition, VisitType
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.readmodel import version_in_force
from trialstack.protocol.version import study_version
from trialstack.queries import commands as qcmd
from trialstack.queries import handlers as queries
from trialstack.queries.readmodel import get_query, list_queries
from trialstack.simulation.consent import ConsentDesk, simulated_credentials
from trialstack.simulation.ecoa import QuestionnaireDesk
from trialstack.simulation.irt import PharmacyDesk
from trialstack.simulation.labs import LabDesk
from trialstack.simulation.values import SubjectProfile, ValueMaker, new_profile

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
Action = Callable[[], None]
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
Amendment = Callable[[StudyDefinition, date], tuple[StudyDefinition, str]]
"""Builds a protocol amendment on a day: the amended definition and the reason for the change."""
RECONSENT_REFUSAL = "is refused: re-consent to "
KRI_CHECK_DAYS = 7


class SimulationBug(RuntimeError):
    """The simulation issued a command the platform could not even consider (bad input, an unknown subject or
    form): a defect of the simulator or of the platform, never simulated behaviour. Not a TrialStackError, so
    it is not mistaken for a user's error."""


@dataclass(frozen=True)
class Staff:
    """Who does the work: a coordinator per site, a monitor, a data manager (ledger actors of real users)."""

    coordinators: dict[str, Actor]
    monitor: Actor = field(default_factory=lambda: Actor("user:monitor", "monitor"))
    data_manager: Actor = field(default_factory=lambda: Actor("user:datamanager", "data_manager"))
    study_builder: Actor = field(default_factory=lambda: Actor("user:studybuilder", "study_builder"))
    investigators: dict[str, Actor] = field(default_factory=dict)

    def coordinator(self, site_id: str) -> Actor:
        return self.coordinators.get(site_id) or Actor(f"user:coordinator.{site_id}", "study_coordinator")

    def investigator(self, site_id: str) -> Actor:
        return self.investigators.get(site_id) or Actor(f"user:investigator.{site_id}", "investigator")


@dataclass
class SubjectRun:
    subject_id: str
    site_id: str
    profile: SubjectProfile
    consent: date
    anchor: date | None = None
    corrections: dict[tuple[str, str], str] = field(default_factory=dict)
    pending_sdv: int = 0
    ae_records: int = 0
    cm_records: int = 0
    username: str | None = None
    """The subject's participant account (eConsent sites)."""
    uses_app: bool | None = None
    typed_name: str | None = None
    signed: dict[str, str] = field(default_factory=dict)
    """Consent document → the version the subject signed."""
    parts: set[tuple[str, str]] = field(default_factory=set)
    """(document, optional part) the subject said Yes to."""
    reconsent_due: bool = False
    withdrawn_documents: set[str] = field(default_factory=set)
    withdrawn: bool = False


class Simulation:
    def __init__(
        self,
        platform: Platform,
        study_id: str,
        *,
        seed: int,
        subjects: int,
        start: datetime = DEFAULT_START,
        follow_up_days: int = 75,
        staff: Staff | None = None,
        amendment: Amendment | None = None,
    ) -> None:
        """`follow_up_days` after the last screening the data are cut: later subjects are still on treatment.

        `amendment`, when given, is published halfway between the start and the data cut."""
        if not isinstance(platform.clock, FixedClock):
            raise TrialStackError("the simulation needs a platform with a FixedClock (it sets the time of each action)")
        self.platform = platform
        self.clock: FixedClock = platform.clock
        self.study_id = study_id
        self.seed = seed
        self.rng = random.Random(seed)
        self.subjects = subjects
        self.start = start
        self.follow_up_days = follow_up_days
        self.staff = staff or Staff({})
        with platform.engine.connect() as connection:
            version = version_in_force(connection, study_id)
        if version is None:
            raise TrialStackError(f"study {study_id} is not loaded")
        self.definition: StudyDefinition = version.definition
        self.values = ValueMaker(self.definition, self.rng)
        self.stats: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        """Commands the platform refused (a domain rule), by command and reason with subjects and dates elided."""
        self._runs: dict[str, SubjectRun] = {}
        self._last_refusal = ""
        self._queue: list[tuple[datetime, int, Action]] = []
        self._order = itertools.count()
        self.amendment = amendment
        self.consent = ConsentDesk(self)
        self.questionnaires = QuestionnaireDesk(self)
        self.pharmacy = PharmacyDesk(self)
        self.laboratory = LabDesk(self)

    def at(self, when: datetime, action: Action) -> None:
        heapq.heappush(self._queue, (when, next(self._order), action))

    def run(self, advance: Callable[[int], None] | None = None) -> Counter[str]:
        sites = [site.id for site in self.definition.sites]
        moment = self.start
        for _ in range(self.subjects):
            moment += timedelta(days=self.rng.randint(0, 3), hours=self.rng.randint(0, 6))
            site = self.rng.choice(sites)
            self.at(moment, partial(self._screen, site))
        data_cut = moment + timedelta(days=self.follow_up_days)
        if self.amendment is not None:
            self.at(self.start + (data_cut - self.start) / 2, self._amend)
        with simulated_credentials(random.Random(f"invitations:{self.seed}")):
            self.clock.set(self.start)
            self.pharmacy.open(self.subjects)
            self.laboratory.open()
            self._check_kris()
            while self._queue and self._queue[0][0] <= data_cut:
                when, _, action = heapq.heappop(self._queue)
                self.clock.set(when)
                action()
                if advance is not None:
                    advance(1)
        self.clock.set(data_cut)
        return self.stats

    def _check_kris(self) -> None:
        """The KRI check, weekly from the start (the server runs it every few minutes): KriThresholdCrossed. Weekly,
        not daily: a crossing is still recorded (within the week it happens), at a seventh of the demo's time."""
        with self.platform.unit_of_work(SYSTEM_OPS) as uow:
            self.stats["KriThresholdCrossed"] += len(check_kris(uow, self.study_id))
            uow.commit()
        self.at(self.clock.now() + timedelta(days=KRI_CHECK_DAYS), self._check_kris)

    # Carrying out one command as one user, in one unit of work, like the API does.
    def _do(self, actor: Actor, handler: Callable[..., Any], *args: Any) -> list[RecordedEvent] | None:
        """The committed events (reactions included), or None when the platform refused the command.

        A refusal (a domain rule: not eligible, a blocking check, ...) is what the platform says to a real user: it
        is counted by reason and the simulation goes on. Any other error is a bug and stops the simulation."""
        try:
            with self.platform.unit_of_work(actor) as uow:
                handler(uow, self.study_id, *args)
                committed = uow.commit()
        except DomainRuleViolation as refusal:
            self.refusals[self._refusal_reason(handler, refusal, args)] += 1
            self._last_refusal = refusal.message
            run = self._runs.get(str(getattr(args[0], "subject_id", ""))) if args else None
            if run is not None and run.reconsent_due and not run.withdrawn and RECONSENT_REFUSAL in refusal.message:
                # The subject came to the visit before re-consenting: the site obtains it there, then saves again.
                self.consent.obtain(run)
                return None if run.reconsent_due else self._do(actor, handler, *args)
            return None
        except TrialStackError as error:
            raise SimulationBug(
                f"{self.clock.now().isoformat()} {actor.id} {handler.__name__}{args!r}: {error.message}"
            ) from error
        self.stats["commands"] += 1
        for event in committed:
            self.stats[event.event_type] += 1
            if event.event_type == "QueryOpened" and event.actor_id == "system:rules":
                if self.laboratory.owns_query(event):
                    self.laboratory.plan_query_answer(event)
                else:
                    self._plan_site_response(event)
        return committed

    @staticmethod
    def _refusal_reason(handler: Callable[..., Any], refusal: DomainRuleViolation, args: tuple[Any, ...]) -> str:
        message = refusal.message
        subject = next((getattr(arg, "subject_id", None) for arg in args if getattr(arg, "subject_id", None)), None)
        if subject:
            message = message.replace(subject, "<subject>")
        return f"{handler.__name__}: {ISO_DATE.sub('<date>', message)}"

    def _later(self, days: tuple[int, int], action: Action) -> None:
        offset = timedelta(days=self.rng.randint(*days), hours=self.rng.randint(1, 7))
        self.at(self.clock.now() + offset, action)

    def _same_day(self, day: date, minutes: int) -> datetime:
        return datetime.combine(day, time(9, 0), UTC) + timedelta(minutes=minutes)

    # The subject's path through the schedule.
    def _screen(self, site_id: str) -> None:
        screened = self._do(
            self.staff.coordinator(site_id),
            capture.screen_subject,
            cmd.ScreenSubject(site_id, self.clock.now().date().isoformat()),
        )
        if screened is None:
            return
        subject_id = next(e.payload["subject_id"] for e in screened if e.event_type == "SubjectScreened")
        run = SubjectRun(str(subject_id), site_id, new_profile(self.rng), self.clock.now().date())
        self._runs[run.subject_id] = run
        self.consent.obtain(run)
        screening = next((v for v in self.definition.schedule.visits if v.type is VisitType.SCREENING), None)
        if screening is not None:
            self._visit(run, screening.id, run.consent, week=-1)
        anchor_id = self.definition.schedule.anchor
        if screening is None or screening.id != anchor_id:
            day1 = run.consent + timedelta(days=self.rng.randint(7, 21))
            self.at(self._same_day(day1, 30), lambda: self._randomization_visit(run, day1))

    def _visit(
        self, run: SubjectRun, visit_id: str, on: date, week: int, overrides: dict[str, dict[str, str]] | None = None
    ) -> None:
        visit = VisitKey(visit_id)
        dated = self._do(
            self.staff.coordinator(run.site_id),
            capture.record_visit_date,
            cmd.RecordVisitDate(run.subject_id, visit, on.isoformat()),
        )
        if dated is None:
            return
        declared = self.definition.visit(visit_id)
        entered: dict[str, dict[str, str]] = {}
        for form_id in declared.forms if declared is not None else ():
            values = self.values.form_values(form_id, run.profile, on, run.consent, week)
            entered[form_id] = {**values, **(overrides or {}).get(form_id, {})}
            self._save(run, FormKey(form_id, visit), entered[form_id])
        self.laboratory.at_visit(run, visit_id, on, entered)
        if visit_id != self.definition.schedule.anchor:
            self.questionnaires.at_visit(run, visit_id, on)
            self.pharmacy.at_visit(run, visit_id, on)

    def _save(self, run: SubjectRun, key: FormKey, values: dict[str, str]) -> None:
        """First entry of a form; now and then with a transcription error that an edit check should catch."""
        if not values:
            return
        typed = values
        if key.form_id in ("VS", "LB") and self.rng.random() < 0.04:
            item_id = "SYSBP" if key.form_id == "VS" else "K"
            item = self.definition.form(key.form_id)
            declared = item.item(item_id) if item is not None else None
            if declared is not None and item_id in values:
                run.corrections[(str(key), item_id)] = values[item_id]
                typed = {**values, item_id: self.values.typo(declared, values[item_id])}
        coordinator = self.staff.coordinator(run.site_id)
        saved = self._do(coordinator, capture.save_form, cmd.SaveForm(run.subject_id, key, self._inputs(typed)))
        if saved is None and typed is not values:
            # A blocking check refused the typo at once: the coordinator re-reads the source and saves again.
            run.corrections = {k: v for k, v in run.corrections.items() if k[0] != str(key)}
            saved = self._do(coordinator, capture.save_form, cmd.SaveForm(run.subject_id, key, self._inputs(values)))
        if saved is not None and self.rng.random() < 0.8:
            run.pending_sdv += 1
            self._later((10, 40), lambda: self._monitor_visit(run, key))

    @staticmethod
    def _inputs(values: dict[str, str]) -> dict[str, cmd.ItemInput]:
        return {item_id: cmd.ItemInput(value=value) for item_id, value in values.items()}

    def _randomization_visit(self, run: SubjectRun, day1: date) -> None:
        self._visit(run, self.definition.schedule.anchor, day1, week=0)
        enrolled = self._do(
            self.staff.coordinator(run.site_id),
            capture.enrol_subject,
            cmd.EnrolSubject(run.subject_id, day1.isoformat()),
        )
        if enrolled is None:
            # The platform refused the enrolment (a criterion not met or not decidable): a screen failure.
            self.stats["screen failures"] += 1
            reason = f"Eligibility not met at Day 1: {self._last_refusal}"
            self._do(
                self.staff.coordinator(run.site_id),
                capture.screen_fail_subject,
                cmd.ScreenFailSubject(run.subject_id, day1.isoformat(), reason),
            )
            return
        run.anchor = day1
        self.pharmacy.after_enrolment(run, day1)
        self.questionnaires.at_visit(run, self.definition.schedule.anchor, day1, enrolled=True)
        self._plan_treatment(run)

    def _plan_treatment(self, run: SubjectRun) -> None:
        anchor = run.anchor
        if anchor is None:
            return
        withdraws_after = self.rng.choice((2, 3, 4)) if self.rng.random() < 0.06 else None
        scheduled = [
            v for v in self.definition.schedule.visits if v.type is VisitType.SCHEDULED and v.day and v.day > 1
        ]
        last = anchor
        for index, visit in enumerate(scheduled):
            if withdraws_after is not None and index >= withdraws_after:
                break
            shift = self.rng.randint(-visit.window.early, visit.window.late)
            if self.rng.random() < 0.06:
                shift = visit.window.late + self.rng.randint(2, 6)
            day = visit.day or 1
            on = anchor + timedelta(days=day - 1 + shift)
            last = on
            self.at(self._same_day(on, 60), partial(self._visit, run, visit.id, on, (day - 1) // 7))
        adverse_event = anchor + timedelta(days=self.rng.randint(3, 60)) if self.rng.random() < 0.35 else None
        if self.rng.random() < 0.25:
            self.at(self._same_day(anchor, 90), lambda: self._medication(run, run.consent))
        end = last + timedelta(days=self.rng.randint(1, 4))
        if adverse_event is not None and adverse_event + timedelta(days=2) <= end:
            # Reported two days after it started, while the subject is on study (none after a withdrawal).
            start = adverse_event
            self.at(self._same_day(start + timedelta(days=2), 120), lambda: self._adverse_event(run, start))
        self.at(self._same_day(end, 180), lambda: self._end_of_study(run, end, withdrawn=withdraws_after is not None))

    def _log_form(self, run: SubjectRun, form_id: str, values: dict[str, str]) -> None:
        if form_id not in self.definition.schedule.log_forms:
            return
        if form_id == "AE":
            run.ae_records += 1
            record = run.ae_records
        else:
            run.cm_records += 1
            record = run.cm_records
        self._save(run, FormKey(form_id, None, record), values)

    def _adverse_event(self, run: SubjectRun, start: date) -> None:
        self._log_form(run, "AE", self.values.adverse_event(start, ongoing=self.rng.random() < 0.3))
        self.pharmacy.on_adverse_event(run)

    def _medication(self, run: SubjectRun, start: date) -> None:
        self._log_form(run, "CM", self.values.medication(start))

    def _end_of_study(self, run: SubjectRun, on: date, withdrawn: bool) -> None:
        eos = next((v for v in self.definition.schedule.visits if v.type is VisitType.END_OF_STUDY), None)
        if withdrawn:
            reason = "Subject withdrew consent for further visits"
            self._do(
                self.staff.coordinator(run.site_id),
                capture.withdraw_subject,
                cmd.WithdrawSubject(run.subject_id, on.isoformat(), reason),
            )
        if eos is not None:
            status = "WITHDRAWAL BY SUBJECT" if withdrawn else "COMPLETED"
            self._visit(run, eos.id, on, week=12, overrides={"DS": {"DSDECOD": status, "DSSTDAT": on.isoformat()}})
        if withdrawn:
            run.withdrawn = True
            self.consent.withdraw(run, on)
        if not withdrawn:
            self._do(
                self.staff.coordinator(run.site_id),
                capture.complete_subject,
                cmd.CompleteSubject(run.subject_id, on.isoformat()),
            )
        self._later((25, 45), lambda: self._lock_if_clean(run))

    # A protocol amendment with a new consent version, and the re-consent it asks for.
    def _amend(self) -> None:
        if self.amendment is None:
            return
        definition, reason = self.amendment(self.definition, self.clock.now().date())
        command = PublishStudyVersion(study_version(definition), "yaml", "amendment", reason=reason)
        published = self._do(self.staff.study_builder, _publish, command)
        if published is None:
            return
        self.definition = definition
        due = [self._runs[e.payload["subject_id"]] for e in published
               if e.event_type == "ReconsentRequired" and e.payload["subject_id"] in self._runs]  # fmt: skip
        for index, run in enumerate(due):
            run.reconsent_due = True
            if index == 0 or self.consent.rng.random() < 0.15:
                continue  # not re-consented before their next visit: refused there, re-consented on the spot
            self.consent.later((0, 3), partial(self._reconsent, run))

    def _reconsent(self, run: SubjectRun) -> None:
        if run.reconsent_due and not run.withdrawn:
            self.consent.obtain(run)

    # Monitoring, queries and data management.
    def _monitor_visit(self, run: SubjectRun, key: FormKey) -> None:
        run.pending_sdv -= 1
        if self._do(self.staff.monitor, capture.verify_source_data, cmd.VerifySourceData(run.subject_id, key)) is None:
            return
        if self.rng.random() < 0.08:
            form = self.definition.form(key.form_id)
            item = self.rng.choice(form.items) if form is not None else None
            if item is not None and item.derived is None:
                text = f"Please confirm {item.label.lower()} against the source document."
                opened = self._do(
                    self.staff.monitor,
                    queries.open_manual_query,
                    run.site_id,
                    qcmd.OpenQuery(run.subject_id, str(key), item.id, text),
                )
                query_id = next((e.payload["query_id"] for e in opened or () if e.event_type == "QueryOpened"), None)
                if query_id is not None:
                    self._later((2, 8), lambda: self._answer_then_close(run, query_id, "Confirmed against the source."))

    def _plan_site_response(self, event: RecordedEvent) -> None:
        payload = event.payload
        run = self._runs.get(payload["subject_id"])
        if run is not None:
            form, item, query_id = payload["form"], payload["item"], payload["query_id"]
            self._later((1, 10), lambda: self._respond(run, form, item, query_id))

    def _respond(self, run: SubjectRun, form: str, item: str, query_id: str) -> None:
        """The site corrects a transcription error from the source (the check then closes the query), or confirms
        the value and answers; a query the correction did not close is answered."""
        true_value = run.corrections.pop((form, item), None)
        if true_value is not None:
            reason = "Transcription error; corrected from the source document"
            change = cmd.SaveForm(run.subject_id, FormKey.parse(form), {item: cmd.ItemInput(true_value)}, reason=reason)
            self._do(self.staff.coordinator(run.site_id), capture.save_form, change)
        self._answer_then_close(run, query_id, "Value confirmed against the source document.")

    def _answer_then_close(self, run: SubjectRun, query_id: str, answer: str) -> None:
        if not self._query_has_status(query_id, "open"):
            return
        answered = self._do(
            self.staff.coordinator(run.site_id), queries.answer_query, qcmd.AnswerQuery(query_id, answer)
        )
        if answered is not None:
            self._later((2, 7), lambda: self._close(query_id))

    def _close(self, query_id: str) -> None:
        if self._query_has_status(query_id, "answered"):
            self._do(self.staff.data_manager, queries.close_query, qcmd.CloseQuery(query_id, "Answer accepted."))

    def _query_has_status(self, query_id: str, status: str) -> bool:
        with self.platform.engine.connect() as connection:
            row = get_query(connection, self.study_id, query_id)
        return row is not None and row["status"] == status

    def _lock_if_clean(self, run: SubjectRun) -> None:
        """Data management locks a finished casebook once it is monitored and no query on it is open or answered;
        until then it looks again every week or two."""
        with self.platform.engine.connect() as connection:
            pending = [
                row
                for row in list_queries(connection, self.study_id, subject_id=run.subject_id)
                if row["status"] in ("open", "answered")
            ]
        if pending or run.pending_sdv:
            self._later((7, 14), lambda: self._lock_if_clean(run))
            return
        if self.rng.random() < 0.4:
            self.stats["casebooks left open"] += 1
            return
        self._do(self.staff.data_manager, capture.lock_casebook, cmd.LockCasebook(run.subject_id))


def _publish(uow: Any, study_id: str, command: PublishStudyVersion) -> None:
    publish_study_version(uow, command)
