"""Steps about personal data: what the ledger never holds, and erasure of a subject's personal data."""

from __future__ import annotations

from trialstack.bdd.errors import ExpectationFailed
from trialstack.bdd.registry import LIBRARY
from trialstack.bdd.world import World
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.handlers import SUBJECT
from trialstack.capture.refs import FormKey, subject_stream_id
from trialstack.identity.policy import Action
from trialstack.ledger import store

PERSONAL = "Personal data"
step = LIBRARY.step


@step(
    "the {actor} erases the subject's personal data because {string}",
    example='When the data manager erases the subject\'s personal data because "participant request"',
    topic=PERSONAL,
)
def erases(world: World, who: str, reason: str) -> None:
    """Crypto-shreds the subject's personal values (its vault key); the clinical data and the trail stay."""
    subject = world.require_subject()
    world.command(
        who,
        Action.PERSONAL_DATA_ERASE,
        "the erasure",
        lambda uow: handlers.erase_personal_data(uow, world.study_id, cmd.ErasePersonalData(subject, reason)),
    )


@step(
    "{item} on {form} has been erased",
    example='Then BRTHDAT on the "Screening" demographics has been erased',
    topic=PERSONAL,
)
def is_erased(world: World, item: str, key: FormKey) -> None:
    """The personal value is gone for good: the casebook reads it as erased."""
    item_id = world.names.item(key.form_id, item).id
    state = world.casebook().item(key, item_id)
    if not state.erased:
        raise ExpectationFailed(f"{item_id} on {key} is not erased", expected="erased", actual=state.value or "empty")


@step(
    "no event of the subject holds {string}",
    example='Then no event of the subject holds "1968-04-12"',
    topic=PERSONAL,
)
def no_event_holds(world: World, text: str) -> None:
    """No payload in the subject's ledger stream contains the text (personal values live in the vault)."""
    subject = world.require_subject()
    with world.platform.engine.connect() as connection:
        stream = store.read_stream(connection, SUBJECT, subject_stream_id(world.study_id, subject))
    holding = [f"{e.event_type} #{e.stream_version}" for e in stream if text in str(e.payload)]
    if holding:
        raise ExpectationFailed(f"the ledger holds {text!r}", expected="nowhere", actual=", ".join(holding))
