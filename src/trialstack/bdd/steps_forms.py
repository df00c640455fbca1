"""Steps about entering, correcting and reading form data, and about saves the system refuses."""

from __future__ import annotations

from trialstack.bdd.errors import ExpectationFailed
from trialstack.bdd.features import DataTable
from trialstack.bdd.registry import LIBRARY
from trialstack.bdd.world import World
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.handlers import Outcome
from trialstack.capture.refs import FormKey
from trialstack.identity.policy import Action

ENTRY = "Data entry and corrections"
REFUSALS = "Refusals"
step = LIBRARY.step


def save(world: World, who: str, key: FormKey, items: dict[str, cmd.ItemInput], reason: str | None) -> Outcome | None:
    """Save items of a form instance as `who`, through the real save handler; the form becomes the current one."""
    subject = world.require_subject()
    world.form = key
    what = f"the save of the {world.names.form_name(key)}"
    return world.command(
        who,
        Action.DATA_ENTER,
        what,
        lambda uow: handlers.save_form(uow, world.study_id, cmd.SaveForm(subject, key, items, reason)),
        form=key,
    )


def item_input(world: World, key: FormKey, item_text: str, value: str) -> tuple[str, cmd.ItemInput]:
    item = world.names.item(key.form_id, item_text)
    return item.id, cmd.ItemInput(value=world.names.value(item, value))


def table_inputs(world: World, key: FormKey, table: DataTable) -> dict[str, cmd.ItemInput]:
    """Rows of | item | value | (optional | unit | not done |); a row with neither value nor reason is skipped."""
    items: dict[str, cmd.ItemInput] = {}
    for row in table.records():
        cells = {name.strip().lower(): value.strip() for name, value in row.items()}
        item = world.names.item(key.form_id, cells["item"])
        not_done = cells.get("not done") or None
        value = world.names.value(item, cells["value"]) if cells["value"] else None
        if value is None and not_done is None:
            continue
        items[item.id] = cmd.ItemInput(value=value, unit=cells.get("unit") or None, not_done_reason=not_done)
    return items


@step(
    "the {actor} enters {item} {value} on {form}",
    example='When the coordinator enters SBP 190 on the "Week 2" vital signs',
    topic=ENTRY,
)
def enters(world: World, who: str, item: str, value: str, key: FormKey) -> None:
    """Saves one item on a form instance (a value with spaces goes in double quotes; a choice by code or text)."""
    item_id, entry = item_input(world, key, item, value)
    save(world, who, key, {item_id: entry}, None)


@step(
    "the {actor} saves {form} with:",
    example=(
        'Given the coordinator saves the "Screening" "Vital Signs" form with:\n'
        "  | item  | value      |\n"
        "  | VSDAT | 2026-01-05 |\n"
        "  | SBP   | 190        |"
    ),
    topic=ENTRY,
    table=("item", "value"),
    optional_columns=("unit", "not done"),
)
def saves_table(world: World, who: str, key: FormKey, table: DataTable) -> None:
    """Saves several items of a form instance at once, as one save (one set of edit checks).

    Columns: `item` and `value`; optional `unit` and `not done` (a reason the item was not collected). A row
    with an empty value is left out of the save.
    """
    save(world, who, key, table_inputs(world, key, table), None)


@step(
    "the {actor} corrects {item} to {value} on {form} because {string}",
    example='When the coordinator corrects SBP to 165 on the "Screening" vital signs because "transcription error"',
    topic=ENTRY,
)
def corrects(world: World, who: str, item: str, value: str, key: FormKey, reason: str) -> None:
    """Changes a saved value, with the reason for change the audit trail keeps (Part 11)."""
    item_id, entry = item_input(world, key, item, value)
    save(world, who, key, {item_id: entry}, reason)


@step(
    "the {actor} corrects {form} because {string}:",
    example=(
        'When the coordinator corrects the "Screening" vital signs because "re-measured at the visit":\n'
        "  | item | value |\n"
        "  | SBP  | 165   |\n"
        "  | DBP  | 95    |"
    ),
    topic=ENTRY,
    table=("item", "value"),
    optional_columns=("unit", "not done"),
)
def corrects_table(world: World, who: str, key: FormKey, reason: str, table: DataTable) -> None:
    """Changes several saved values in one save; the reason applies to each change."""
    save(world, who, key, table_inputs(world, key, table), reason)


@step(
    "the {actor} marks {item} not done on {form} because {string}",
    example='When the coordinator marks HEIGHT not done on the "Week 2" vital signs because "scale broken"',
    topic=ENTRY,
)
def not_done(world: World, who: str, item: str, key: FormKey, reason: str) -> None:
    """Records that an item was not collected, and why; replacing a saved value, that reason is the change's too."""
    item_id = world.names.item(key.form_id, item).id
    save(world, who, key, {item_id: cmd.ItemInput(not_done_reason=reason, reason_for_change=reason)}, None)


@step(
    "the {actor} clears {item} on {form} because {string}",
    example='When the coordinator clears AEENDAT on the adverse event record 1 because "event is still ongoing"',
    topic=ENTRY,
)
def clears(world: World, who: str, item: str, key: FormKey, reason: str) -> None:
    """Removes a saved value, with the reason for change."""
    item_id = world.names.item(key.form_id, item).id
    save(world, who, key, {item_id: cmd.ItemInput()}, reason)


def _stored(world: World, key: FormKey, item_text: str) -> tuple[str, str | None, str | None]:
    item = world.names.item(key.form_id, item_text)
    state = world.casebook().item(key, item.id)
    return item.id, state.value, state.not_done_reason


@step(
    "{item} on {form} is {value}",
    example='Then BMI on the "Screening" vital signs is 26.3',
    topic=ENTRY,
)
def value_is(world: World, item: str, key: FormKey, value: str) -> None:
    """The item's value in the casebook, as stored (entered, corrected or derived by the system)."""
    item_id, stored, reason = _stored(world, key, item)
    definition = world.names.item(key.form_id, item)
    wanted = world.names.value(definition, value)
    if stored != wanted:
        actual = stored if stored is not None else (f"not done ({reason})" if reason else "no value")
        raise ExpectationFailed(f"{item_id} on {key} is {actual}", expected=wanted, actual=actual)


@step(
    "{item} on {form} has no value",
    example='Then BMI on the "Screening" vital signs has no value',
    topic=ENTRY,
)
def has_no_value(world: World, item: str, key: FormKey) -> None:
    """The item has no value in the casebook (never entered, cleared, or not derivable)."""
    item_id, stored, _reason = _stored(world, key, item)
    if stored is not None:
        raise ExpectationFailed(f"{item_id} on {key} has a value", expected="no value", actual=stored)


@step(
    "the {words} is refused with {string}",
    example='Then the save is refused with "Temperature must be 34.0 to 42.0 C"',
    topic=REFUSALS,
    inspects_refusal=True,
)
def refused(world: World, what: str, message: str) -> None:
    """The previous action was refused, with a message that contains this text (case-insensitive)."""
    refusal = world.refusal
    world.refusal = None
    if refusal is None:
        raise ExpectationFailed(f"the {what} was accepted", expected=f'refused with "{message}"', actual="accepted")
    if message.lower() not in refusal.message.lower():
        raise ExpectationFailed(
            f"the {what} was refused for another reason",
            expected=f'refused with "{message}"',
            actual=f"refused with {refusal.message!r}",
        )


@step("the {words} is accepted", example="Then the save is accepted", topic=REFUSALS, inspects_refusal=True)
def accepted(world: World, what: str) -> None:
    """The previous action was accepted by the system."""
    refusal = world.refusal
    world.refusal = None
    if refusal is not None:
        raise ExpectationFailed(f"the {what} was refused", expected="accepted", actual=f"refused: {refusal.message}")
