"""Steps about time, subjects and visits, in the words of a study team's UAT scripts."""

from __future__ import annotations

from trialstack.bdd.errors import ExpectationFailed
from trialstack.bdd.registry import LIBRARY
from trialstack.bdd.world import World
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.checks import window_check
from trialstack.capture.refs import VisitKey
from trialstack.identity.policy import Action

TIME = "Time"
SUBJECTS = "Subjects and visits"
step = LIBRARY.step


@step("today is {date}", example="Given today is 2026-01-19", topic=TIME)
def today_is(world: World, day: str) -> None:
    """Sets the scenario's fixed clock to this day and keeps it there.

    Until a scenario says what today is, time follows the story: a step that happens on a date moves the clock
    forward to that date. Once today is set, only another `today is` moves it, so dates after it are in the
    future and are refused as the system refuses them.
    """
    world.pin_today(day)


@step(
    "subject {string} is screened at site {string} on {date}",
    example='Given subject "0101-001" is screened at site "0101" on 2026-01-05',
    topic=SUBJECTS,
)
def screened(world: World, subject: str, site: str, day: str) -> None:
    """Screens a new subject at the site; the system numbers subjects per site and must assign the number named.

    The subject becomes the one later steps act on.
    """
    world.reach(day)
    outcome = world.command(
        "coordinator",
        Action.SUBJECT_SCREEN,
        f"screening at site {site}",
        lambda uow: handlers.screen_subject(uow, world.study_id, cmd.ScreenSubject(site, day)),
        site=site,
    )
    if outcome is None:
        return
    if outcome.subject_id != subject:
        raise ExpectationFailed(
            f"the system numbered the subject {outcome.subject_id}, not {subject}",
            expected=f"subject number {subject}",
            actual=f"subject number {outcome.subject_id}",
        )
    world.subject = subject


@step(
    "the coordinator turns to subject {string}",
    example='When the coordinator turns to subject "0101-002"',
    topic=SUBJECTS,
)
def turn_to(world: World, subject: str) -> None:
    """Makes an already screened subject the one later steps act on."""
    if not world.casebook(subject).exists:
        raise ExpectationFailed(f"subject {subject} has not been screened", expected=f"subject {subject} exists")
    world.subject = subject
    world.form = None
    world.visit = None


@step(
    "the {visit} visit took place on {date}",
    example='Given the "Screening" visit took place on 2026-01-05',
    topic=SUBJECTS,
)
def visit_took_place(world: World, visit: VisitKey, day: str) -> None:
    """The coordinator records the visit date; its window is checked once the Day 1 date is known."""
    subject = world.require_subject()
    world.reach(day)
    world.visit = visit
    world.command(
        "coordinator",
        Action.DATA_ENTER,
        f"the {world.names.visit_name(visit)} visit date",
        lambda uow: handlers.record_visit_date(uow, world.study_id, cmd.RecordVisitDate(subject, visit, day)),
        visit=visit,
    )


@step(
    "the {visit} visit date is corrected to {date} because {string}",
    example='When the "Week 2" visit date is corrected to 2026-01-19 because "date transcribed from the wrong page"',
    topic=SUBJECTS,
)
def visit_corrected(world: World, visit: VisitKey, day: str, reason: str) -> None:
    """The coordinator corrects a recorded visit date, giving the reason for change the audit trail keeps."""
    subject = world.require_subject()
    world.reach(day)
    world.visit = visit
    world.command(
        "coordinator",
        Action.DATA_ENTER,
        f"the correction of the {world.names.visit_name(visit)} visit date",
        lambda uow: handlers.record_visit_date(uow, world.study_id, cmd.RecordVisitDate(subject, visit, day, reason)),
        visit=visit,
    )


def _window(world: World, visit: VisitKey | None) -> tuple[VisitKey, bool, str]:
    key = visit or world.visit
    if key is None:
        raise ExpectationFailed("no visit yet: record a visit date first")
    casebook = world.casebook()
    failing = (f"{key.visit_id}-WINDOW", str(key)) in casebook.failing
    result = window_check(world.rules, casebook, key)
    if result is None:
        state = "has no date or no window"
    elif result.result is None:
        state = "cannot be placed yet: the anchor visit date is not recorded"
    else:
        state = "out of window: " + result.message if result.result is False else "within its window"
    return key, failing, state


@step("the visit is out of window", example="Then the visit is out of window", topic=SUBJECTS)
@step("the {visit} visit is out of window", example='Then the "Week 2" visit is out of window', topic=SUBJECTS)
def out_of_window(world: World, visit: VisitKey | None = None) -> None:
    """The visit (the last one recorded, or the one named) is out of its window: its window check failed."""
    key, failing, state = _window(world, visit)
    if not failing:
        name = world.names.visit_name(key)
        raise ExpectationFailed(f"{name} is not out of window", expected=f"{name} out of window", actual=state)


@step("the visit is within its window", example="Then the visit is within its window", topic=SUBJECTS)
@step("the {visit} visit is within its window", example='Then the "Week 2" visit is within its window', topic=SUBJECTS)
def within_window(world: World, visit: VisitKey | None = None) -> None:
    """The visit's date is inside its window, counted in study days from the Day 1 date."""
    key, failing, state = _window(world, visit)
    if failing or state != "within its window":
        name = world.names.visit_name(key)
        raise ExpectationFailed(f"{name} is not within its window", expected=f"{name} within its window", actual=state)
