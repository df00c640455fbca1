"""The state of one running scenario, and the one way its steps change data: a real command in a unit of work.

Every command is authorized as an adapter would (`identity.policy.authorize`, role × action), then its handler
runs in its own committed unit of work, so policies (system queries) and read models react exactly as they do
behind the API. A refused command in a When step is kept for the next step to inspect; in a Given step, where it
can only be a broken setup, it fails the scenario at once.

Time follows the story: a step that happens "on 2026-01-19" moves the fixed clock forward to that day, unless
the scenario pinned "today" itself. Correlation ids come from the seeded generator, so the same run writes the
same ledger, byte for byte, and its head hash is reproducible evidence.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

from trialstack.bdd.coverage import Observations
from trialstack.bdd.errors import ExpectationFailed
from trialstack.bdd.names import Names
from trialstack.bootstrap import Platform
from trialstack.capture.checks import CheckResult, StudyRules, eligibility
from trialstack.capture.handlers import Outcome, read_casebook
from trialstack.capture.model import Casebook
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.clock import FixedClock
from trialstack.errors import DomainRuleViolation, TrialStackError
from trialstack.identity.policy import ALL_SITES, Action, Grant, Principal, Role, authorize
from trialstack.ledger.cache import StreamStateCache
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import CheckAction
from trialstack.queries.readmodel import list_queries

T = TypeVar("T")
ROLES = {
    "coordinator": Role.STUDY_COORDINATOR,
    "investigator": Role.INVESTIGATOR,
    "monitor": Role.MONITOR,
    "data manager": Role.DATA_MANAGER,
    "medical monitor": Role.MEDICAL_MONITOR,
    "study builder": Role.STUDY_BUILDER,
}
PARTICIPANT = "participant"
WORKDAY = time(9, 0)


@dataclass(frozen=True)
class Refusal:
    """A command the system refused: what was asked, and the message it answered with."""

    what: str
    message: str
    code: str


@dataclass
class World:
    platform: Platform
    names: Names
    rules: StudyRules
    rng: random.Random
    observed: Observations = field(default_factory=Observations)
    subject: str | None = None
    form: FormKey | None = None
    visit: VisitKey | None = None
    last_checks: list[CheckResult] = field(default_factory=list)
    refusal: Refusal | None = None
    step_events: list[RecordedEvent] = field(default_factory=list)
    step_kind: str = "Context"
    pinned: bool = False
    invitation_code: str | None = None
    """The one-time code of the subject's latest invitation to the participant app (shown once to the site)."""
    participant: str | None = None
    """The username of the participant account the subject opened."""
    lab_message: str | None = None
    """The last HL7 message the central laboratory sent in the scenario (it may send the very same one again)."""
    lab_refusal: tuple[str, str, str] | None = None
    """The last results file refused: its name, and the first refused row's location and reason."""
    lab_appended: tuple[str, ...] = ()
    """The event types the central laboratory's last delivery appended (none: everything in it was known)."""

    @property
    def study_id(self) -> str:
        return self.names.study_id

    @property
    def clock(self) -> FixedClock:
        clock = self.platform.clock
        if not isinstance(clock, FixedClock):
            raise TypeError("a scenario runs on a FixedClock")
        return clock

    # time -------------------------------------------------------------------------------------------------
    def today(self) -> str:
        return self.clock.now().date().isoformat()

    def pin_today(self, day: str) -> None:
        self.clock.set(datetime.combine(date.fromisoformat(day), WORKDAY, UTC))
        self.pinned = True

    def reach(self, day: str) -> None:
        """The story has reached `day`: move the clock forward to it, unless the scenario pinned today."""
        if not self.pinned and date.fromisoformat(day) > self.clock.now().date():
            self.clock.set(datetime.combine(date.fromisoformat(day), WORKDAY, UTC))

    # who --------------------------------------------------------------------------------------------------
    def actor(self, who: str) -> tuple[Principal, Actor]:
        if who == PARTICIPANT:  # the subject's own account: it acts for that one subject only
            username = self.participant or PARTICIPANT
            grant = Grant(self.study_id, Role.PARTICIPANT, ALL_SITES, subject_id=self.subject)
            return Principal(f"bdd:{username}", username, who, (grant,)), Actor(f"user:{username}", grant.role.value)
        role = ROLES[who]
        username = who.replace(" ", "-")
        principal = Principal(f"bdd:{username}", username, who, (Grant(self.study_id, role, ALL_SITES),))
        return principal, Actor(f"user:{username}", role.value)

    def require_subject(self) -> str:
        if self.subject is None:
            raise ExpectationFailed('no subject yet: start with `Given subject "0101-001" is screened at site ...`')
        return self.subject

    def require_form(self) -> FormKey:
        if self.form is None:
            raise ExpectationFailed("no form yet: this step refers to the form of an earlier step")
        return self.form

    # commands ---------------------------------------------------------------------------------------------
    def _unit_of_work(self, actor: Actor, cache: StreamStateCache | None = None) -> UnitOfWork:
        correlation = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        platform = self.platform
        return UnitOfWork(
            platform.engine,
            platform.wiring,
            platform.clock,
            actor,
            correlation,
            cache or platform.cache,
            platform.vault,
        )

    def command(
        self,
        who: str,
        action: Action,
        what: str,
        handler: Callable[[UnitOfWork], T],
        *,
        site: str | None = None,
        form: FormKey | None = None,
        visit: VisitKey | None = None,
    ) -> T | None:
        """Authorize, run `handler` in a committed unit of work, observe what it did; None when refused."""
        principal, actor = self.actor(who)
        self.last_checks = []
        try:
            authorize(principal, action, self.study_id, site)
            with self._unit_of_work(actor) as uow:
                result = handler(uow)
                committed = uow.commit()
        except TrialStackError as error:
            self.platform.cache.clear()
            self._blocked(error, form, visit)
            self._refused(Refusal(what, error.message, error.code))
            return None
        self._observe(result, committed)
        return result

    def probe(self, who: str, action: Action, handler: Callable[[UnitOfWork], T]) -> TrialStackError | None:
        """Run a command and roll it back: would the system accept it now? (None: yes; else its refusal)."""
        principal, actor = self.actor(who)
        try:
            authorize(principal, action, self.study_id, None)
            with self._unit_of_work(actor, StreamStateCache(capacity=8)) as uow:
                handler(uow)
                uow.settle()
        except TrialStackError as error:
            return error
        return None

    def _refused(self, refusal: Refusal) -> None:
        if self.step_kind == "Action":
            self.refusal = refusal
            return
        raise ExpectationFailed(
            f"{refusal.what} was refused: {refusal.message}",
            expected=f"{refusal.what} accepted",
            actual=f"refused ({refusal.code}): {refusal.message}",
        )

    def _blocked(self, error: TrialStackError, form: FormKey | None, visit: VisitKey | None) -> None:
        """A save refused by a blocking check: that check failed, though no event says so."""
        if not isinstance(error, DomainRuleViolation):
            return
        if form is not None:
            for compiled in self.rules.checks.get(form.form_id, ()):
                check = compiled.check
                if check.action is CheckAction.BLOCK and check.message == error.message:
                    self._check(CheckResult(check.id, str(form), check.item, False, check.message, check.action))
        if visit is not None and error.field == "visit_date":
            self._check(CheckResult(f"{visit.visit_id}-WINDOW", str(visit), "VISIT_DATE", False, error.message,
                                    CheckAction.BLOCK))  # fmt: skip

    def _check(self, result: CheckResult) -> None:
        self.last_checks.append(result)
        self.observed.check(result)

    def _observe(self, result: Any, committed: list[RecordedEvent]) -> None:
        self.step_events += committed
        if isinstance(result, Outcome):
            for check in result.checks:
                self._check(check)
        for event in committed:
            if event.event_type == "VisitDateRecorded":
                self.observed.visit(VisitKey.parse(event.payload["visit"]).visit_id)

    # reading ----------------------------------------------------------------------------------------------
    def casebook(self, subject: str | None = None) -> Casebook:
        with self.platform.engine.connect() as connection:
            subject_id = subject or self.require_subject()
            return read_casebook(connection, self.platform.cache, self.study_id, subject_id, self.platform.vault)

    def queries(self) -> list[dict[str, Any]]:
        with self.platform.engine.connect() as connection:
            return list_queries(connection, self.study_id, subject_id=self.require_subject())

    def eligibility(self) -> dict[str, bool | None]:
        """Each criterion on the subject's eligibility form, as the enrolment decision evaluates it (observed)."""
        casebook = self.casebook()
        declared = self.rules.definition.eligibility
        key = None
        if declared is not None:
            key = next((k for k in sorted(casebook.forms) if k.form_id == declared.form), None)
        results = eligibility(self.rules, casebook, key)
        for criterion_id, result in results.items():
            self.observed.criterion(criterion_id, result)
        return results
