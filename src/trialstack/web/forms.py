"""Posted HTML forms turned into the API's request bodies, and errors turned into messages next to their fields.

Building the API's Pydantic bodies from the fields gives the pages exactly the API's validation; the handlers'
InvalidInput / DomainRuleViolation carry a `field` (`items.SYSBP`, `visit_date`, `reason`) that names where the
message goes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import ValidationError
from starlette.datastructures import FormData

from trialstack.api.schemas import ItemEntry, SaveFormRequest
from trialstack.capture import commands as cmd
from trialstack.capture.refs import FormKey
from trialstack.errors import InvalidInput, TrialStackError

GENERAL = "_"
"""The key of a message that belongs to no field (shown above the form)."""


def text(form: FormData | Mapping[str, list[str]], name: str) -> str | None:
    """A field's trimmed text, None when absent or blank."""
    raw: str | None
    if isinstance(form, FormData):
        value = form.get(name)
        raw = value if isinstance(value, str) else None
    else:
        values = form.get(name)
        raw = values[0] if values else None
    stripped = raw.strip() if raw is not None else ""
    return stripped or None


def general_error(errors: Mapping[str, str], fields: Iterable[str] = ()) -> str | None:
    """The first message that belongs to no field shown on the page (`items.X` and `fields` have their own place)."""
    shown = set(fields)
    return next(
        (message for field, message in errors.items() if not field.startswith("items.") and field not in shown), None
    )


def posted_version(form: FormData) -> int | None:
    """The casebook version the page showed (the `version` field): the save is pinned to it, like If-Match."""
    raw = text(form, "version")
    if raw is not None and not raw.isdigit():
        raise InvalidInput("the page's version is not a number; reload the page", field="version")
    return int(raw) if raw is not None else None


def errors_of(error: Exception) -> dict[str, str]:
    """`{field: message}` of a validation error or a TrialStack error (GENERAL when it names no field)."""
    if isinstance(error, ValidationError):
        found: dict[str, str] = {}
        for detail in error.errors():
            where = ".".join(str(part) for part in detail.get("loc", ()))
            found.setdefault(where or GENERAL, str(detail.get("msg", "invalid")))
        return found
    if isinstance(error, TrialStackError):
        return {error.field or GENERAL: error.message}
    return {GENERAL: str(error)}


def save_form_request(form: FormData, item_ids: Iterable[str]) -> SaveFormRequest:
    """The body the API's PUT …/forms/{form} takes: `item.X` value, `notdone.X` reason, `rfc.X` reason for change."""
    items: dict[str, ItemEntry] = {}
    for item_id in item_ids:
        value = text(form, f"item.{item_id}")
        not_done = text(form, f"notdone.{item_id}")
        items[item_id] = ItemEntry(
            value=value,
            not_done_reason=not_done,
            reason_for_change=text(form, f"rfc.{item_id}"),
        )
    return SaveFormRequest(items=items, reason=text(form, "reason"))


def save_form_command(subject_id: str, key: FormKey, body: SaveFormRequest) -> cmd.SaveForm:
    """As the API's `put_form` builds it."""
    return cmd.SaveForm(
        subject_id,
        key,
        {
            item: cmd.ItemInput(
                value=None if entry.value is None else str(entry.value),
                unit=entry.unit,
                not_done_reason=entry.not_done_reason,
                reason_for_change=entry.reason_for_change,
            )
            for item, entry in body.items.items()
        },
        reason=body.reason,
    )
