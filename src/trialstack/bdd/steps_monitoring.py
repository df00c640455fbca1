"""Steps about monitoring and data management: source data verification, freezing and locking."""

from __future__ import annotations

from trialstack.bdd.errors import ExpectationFailed
from trialstack.bdd.registry import LIBRARY
from trialstack.bdd.world import World
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.refs import FormKey
from trialstack.capture.views import form_status
from trialstack.identity.policy import Action

MONITORING = "Source data verification, freeze and lock"
step = LIBRARY.step


@step(
    "the {actor} source-verifies {form}",
    example='When the monitor source-verifies the "Screening" vital signs',
    topic=MONITORING,
)
def verify_form(world: World, who: str, key: FormKey) -> None:
    """Verifies every item due for SDV on the form instance (the targeted items when the form marks any)."""
    subject = world.require_subject()
    world.form = key
    world.command(
        who,
        Action.SDV_PERFORM,
        f"SDV of the {world.names.form_name(key)}",
        lambda uow: handlers.verify_source_data(uow, world.study_id, cmd.VerifySourceData(subject, key)),
    )


@step(
    "the {actor} source-verifies only {item} on {form}",
    example='When the monitor source-verifies only SYSBP on the "Screening" vital signs',
    topic=MONITORING,
)
def verify_item(world: World, who: str, item: str, key: FormKey) -> None:
    """Verifies one item of the form instance against the source documents."""
    subject = world.require_subject()
    item_id = world.names.item(key.form_id, item).id
    world.form = key
    command = cmd.VerifySourceData(subject, key, (item_id,))
    world.command(
        who,
        Action.SDV_PERFORM,
        f"SDV of {item_id}",
        lambda uow: handlers.verify_source_data(uow, world.study_id, command),
    )


def _sdv_complete(world: World, key: FormKey) -> bool:
    return form_status(world.rules, world.casebook(), key).sdv_complete


@step("SDV of {form} is complete", example='Then SDV of the "Screening" vital signs is complete', topic=MONITORING)
def sdv_complete(world: World, key: FormKey) -> None:
    """Every item due for SDV on the form instance is verified (and unchanged since)."""
    if not _sdv_complete(world, key):
        raise ExpectationFailed(f"SDV of {key} is not complete", expected="SDV complete", actual="SDV incomplete")


@step(
    "SDV of {form} is not complete", example='Then SDV of the "Screening" vital signs is not complete', topic=MONITORING
)
def sdv_incomplete(world: World, key: FormKey) -> None:
    """Some item due for SDV is not verified, or changed after it was verified."""
    if _sdv_complete(world, key):
        raise ExpectationFailed(f"SDV of {key} is complete", expected="SDV incomplete", actual="SDV complete")


@step(
    "the {actor} freezes {form}", example='When the data manager freezes the "Screening" vital signs', topic=MONITORING
)
def freeze(world: World, who: str, key: FormKey) -> None:
    """Freezes a form instance: no data can change on it until it is unfrozen."""
    subject = world.require_subject()
    world.form = key
    world.command(
        who,
        Action.FORM_FREEZE,
        f"freezing the {world.names.form_name(key)}",
        lambda uow: handlers.freeze_form(uow, world.study_id, cmd.FreezeForm(subject, key)),
    )


@step(
    "the {actor} unfreezes {form} because {string}",
    example='When the data manager unfreezes the "Screening" vital signs because "query answer needs a correction"',
    topic=MONITORING,
)
def unfreeze(world: World, who: str, key: FormKey, reason: str) -> None:
    """Unfreezes a form instance, with the reason."""
    subject = world.require_subject()
    world.form = key
    world.command(
        who,
        Action.FORM_FREEZE,
        f"unfreezing the {world.names.form_name(key)}",
        lambda uow: handlers.unfreeze_form(uow, world.study_id, cmd.UnfreezeForm(subject, key, reason)),
    )


@step("the {actor} locks the casebook", example="When the data manager locks the casebook", topic=MONITORING)
def lock_casebook(world: World, who: str) -> None:
    """Locks the subject's casebook: no data of the subject can change until it is unlocked."""
    subject = world.require_subject()
    world.command(
        who,
        Action.CASEBOOK_LOCK,
        "locking the casebook",
        lambda uow: handlers.lock_casebook(uow, world.study_id, cmd.LockCasebook(subject)),
    )


@step(
    "the {actor} unlocks the casebook because {string}",
    example='When the data manager unlocks the casebook because "late laboratory results"',
    topic=MONITORING,
)
def unlock_casebook(world: World, who: str, reason: str) -> None:
    """Unlocks the subject's casebook, with the reason."""
    subject = world.require_subject()
    world.command(
        who,
        Action.CASEBOOK_LOCK,
        "unlocking the casebook",
        lambda uow: handlers.unlock_casebook(uow, world.study_id, cmd.UnlockCasebook(subject, reason)),
    )


@step("the {actor} locks the study", example="When the data manager locks the study", topic=MONITORING)
def lock_study(world: World, who: str) -> None:
    """Locks the whole study (database lock): no data of any subject can change."""
    world.command(
        who, Action.STUDY_LOCK, "locking the study", lambda uow: handlers.lock_study(uow, cmd.LockStudy(world.study_id))
    )


@step(
    "the {actor} unlocks the study because {string}",
    example='When the data manager unlocks the study because "database re-opened for a late SAE"',
    topic=MONITORING,
)
def unlock_study(world: World, who: str, reason: str) -> None:
    """Unlocks the study, with the reason."""
    world.command(
        who,
        Action.STUDY_LOCK,
        "unlocking the study",
        lambda uow: handlers.unlock_study(uow, cmd.UnlockStudy(world.study_id, reason)),
    )


@step("the casebook is locked", example="Then the casebook is locked", topic=MONITORING)
def casebook_locked(world: World) -> None:
    """The subject's casebook is locked."""
    if not world.casebook().locked:
        raise ExpectationFailed("the casebook is not locked", expected="locked", actual="not locked")
