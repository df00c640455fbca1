"""Steps about eligibility, enrolment and the subject's status: asked of the real enrolment decision."""

from __future__ import annotations

from trialstack.bdd.errors import ExpectationFailed
from trialstack.bdd.registry import LIBRARY
from trialstack.bdd.world import World
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.model import SubjectStatus
from trialstack.identity.policy import Action

ELIGIBILITY = "Eligibility and enrolment"
step = LIBRARY.step

STATUS_WORDS = {
    "in screening": SubjectStatus.SCREENING,
    "enrolled": SubjectStatus.ENROLLED,
    "screen failed": SubjectStatus.SCREEN_FAILED,
    "withdrawn": SubjectStatus.WITHDRAWN,
    "completed": SubjectStatus.COMPLETED,
}


def _criteria_text(results: dict[str, bool | None]) -> str:
    words = {True: "met", False: "NOT met", None: "unknown (data missing)"}
    return ", ".join(f"{criterion} {words[result]}" for criterion, result in results.items())


def _probe_enrolment(world: World) -> tuple[dict[str, bool | None], str | None]:
    subject = world.require_subject()
    results = world.eligibility()
    refusal = world.probe(
        "investigator",
        Action.SUBJECT_ENROL,
        lambda uow: handlers.enrol_subject(uow, world.study_id, cmd.EnrolSubject(subject, world.today())),
    )
    return results, refusal.message if refusal is not None else None


@step("the subject can be enrolled", example="Then the subject can be enrolled", topic=ELIGIBILITY)
def can_be_enrolled(world: World) -> None:
    """The enrolment decision would accept the subject today; asked of the real handler, then rolled back."""
    results, refusal = _probe_enrolment(world)
    if refusal is not None:
        raise ExpectationFailed(
            "the subject cannot be enrolled",
            expected="enrolment accepted",
            actual=f"refused: {refusal} ({_criteria_text(results)})",
        )


@step(
    "the subject cannot be enrolled because {criteria}",
    example='Then the subject cannot be enrolled because "IN02"',
    topic=ELIGIBILITY,
)
def cannot_be_enrolled(world: World, criteria: tuple[str, ...]) -> None:
    """The enrolment decision refuses the subject, and exactly these criteria are the ones not met."""
    results, refusal = _probe_enrolment(world)
    failing = sorted(c for c, result in results.items() if result is False)
    if refusal is None or failing != sorted(criteria):
        raise ExpectationFailed(
            f"enrolment is not refused for {', '.join(criteria)} alone",
            expected=f"refused: criteria {', '.join(sorted(criteria))} not met",
            actual=f"{'refused: ' + refusal if refusal else 'enrolment accepted'} ({_criteria_text(results)})",
        )


@step(
    "eligibility cannot be decided without {criteria}",
    example='Then eligibility cannot be decided without "IN04"',
    topic=ELIGIBILITY,
)
def undecided(world: World, criteria: tuple[str, ...]) -> None:
    """Enrolment is refused because these criteria lack data (unknown, not failed), and no criterion fails."""
    results, refusal = _probe_enrolment(world)
    unknown = sorted(c for c, result in results.items() if result is None)
    failing = [c for c, result in results.items() if result is False]
    if refusal is None or unknown != sorted(criteria) or failing:
        raise ExpectationFailed(
            "eligibility is not undecided as expected",
            expected=f"undecided: {', '.join(sorted(criteria))} lack data",
            actual=f"{'refused: ' + refusal if refusal else 'enrolment accepted'} ({_criteria_text(results)})",
        )


@step("criterion {criteria} is met", example='Then criterion "EX03" is met', topic=ELIGIBILITY)
def criterion_met(world: World, criteria: tuple[str, ...]) -> None:
    """Each named criterion holds on the data entered so far."""
    results = world.eligibility()
    if any(results.get(c) is not True for c in criteria):
        raise ExpectationFailed(
            "a criterion is not met", expected=f"{', '.join(criteria)} met", actual=_criteria_text(results)
        )


@step("criterion {criteria} is not met", example='Then criterion "EX03" is not met', topic=ELIGIBILITY)
def criterion_not_met(world: World, criteria: tuple[str, ...]) -> None:
    """Each named criterion is false on the data entered so far (unknown is not "not met")."""
    results = world.eligibility()
    if any(results.get(c) is not False for c in criteria):
        raise ExpectationFailed(
            "a criterion is not failed", expected=f"{', '.join(criteria)} NOT met", actual=_criteria_text(results)
        )


@step(
    "the {actor} enrols the subject on {date}",
    example="When the investigator enrols the subject on 2026-02-02",
    topic=ELIGIBILITY,
)
def enrol(world: World, who: str, day: str) -> None:
    """Enrols the subject; the system enrols only when every eligibility criterion holds."""
    subject = world.require_subject()
    world.reach(day)
    world.eligibility()
    world.command(
        who,
        Action.SUBJECT_ENROL,
        "the enrolment",
        lambda uow: handlers.enrol_subject(uow, world.study_id, cmd.EnrolSubject(subject, day)),
    )


@step(
    "the {actor} records a screen failure on {date} because {string}",
    example='When the investigator records a screen failure on 2026-01-20 because "SBP above 179 mmHg"',
    topic=ELIGIBILITY,
)
def screen_failure(world: World, who: str, day: str, reason: str) -> None:
    """Ends screening without enrolment; the failed criteria are recorded with the reason."""
    subject = world.require_subject()
    world.reach(day)
    world.eligibility()
    world.command(
        who,
        Action.SUBJECT_ENROL,
        "the screen failure",
        lambda uow: handlers.screen_fail_subject(uow, world.study_id, cmd.ScreenFailSubject(subject, day, reason)),
    )


@step(
    "the {actor} withdraws the subject on {date} because {string}",
    example='When the investigator withdraws the subject on 2026-03-02 because "withdrawal by subject"',
    topic=ELIGIBILITY,
)
def withdraw(world: World, who: str, day: str, reason: str) -> None:
    """Withdraws an enrolled subject from the study, with the reason."""
    subject = world.require_subject()
    world.reach(day)
    world.command(
        who,
        Action.SUBJECT_WITHDRAW,
        "the withdrawal",
        lambda uow: handlers.withdraw_subject(uow, world.study_id, cmd.WithdrawSubject(subject, day, reason)),
    )


@step(
    "the {actor} records that the subject completed the study on {date}",
    example="When the investigator records that the subject completed the study on 2026-04-27",
    topic=ELIGIBILITY,
)
def complete(world: World, who: str, day: str) -> None:
    """Records that an enrolled subject completed the study."""
    subject = world.require_subject()
    world.reach(day)
    world.command(
        who,
        Action.SUBJECT_WITHDRAW,
        "the completion",
        lambda uow: handlers.complete_subject(uow, world.study_id, cmd.CompleteSubject(subject, day)),
    )


@step("the subject is {subject_status}", example="Then the subject is enrolled", topic=ELIGIBILITY)
def subject_status(world: World, status: str) -> None:
    """The subject's status: in screening, enrolled, screen failed, withdrawn or completed."""
    actual = world.casebook().status
    if actual is not STATUS_WORDS[status]:
        shown = {v: k for k, v in STATUS_WORDS.items()}.get(actual, "not screened") if actual else "not screened"
        raise ExpectationFailed(f"the subject is {shown}", expected=status, actual=shown)
