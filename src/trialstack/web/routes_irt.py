"""Randomization and drug supply at the site (IRT), on irt's handlers and read model: the casebook's IRT panel
(randomize with a confirmation of the stratum, dispense, return), emergency unblinding with re-authentication, and
the site's supply page (shipments, receipt, kits on the shelf).

Every page here is blinded: it reads irt's read model with `unblinded` False (no arm, no kit treatment, not even
hidden), except the panel's allocation line for a user who is unblinded in the study, and the one response to an
emergency unblinding, which names the treatment to the investigator who broke the blind and is never stored.

The panel reads need `subject.read` at the subject's site; randomizing `subject.randomize`, dispensing and returns
`kit.dispense`, unblinding `subject.unblind`; the supply page `supply.receive` at the shipment's site.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import Connection
from starlette.datastructures import FormData

from trialstack.api.access import actor_for
from trialstack.api.platform import platform_of
from trialstack.errors import InvalidInput, NotFound, TrialStackError
from trialstack.identity.authentication import reauthenticate_for_signature
from trialstack.identity.model import NotAuthenticated, TooManyAttempts
from trialstack.identity.policy import Action, Principal, Role, authorize
from trialstack.irt import commands as cmd
from trialstack.irt import handlers as irt
from trialstack.irt.readmodel import kits, shipments, subject_row
from trialstack.irt.supply import CONDITIONS, KitStatus
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import SITE_FACTOR, StudyDefinition
from trialstack.protocol.readmodel import version_in_force
from trialstack.web.forms import errors_of, text
from trialstack.web.loaders import authorize_staff_on_subject
from trialstack.web.routing import is_htmx, redirect, web_router
from trialstack.web.run import run
from trialstack.web.session import current_user, posted_form
from trialstack.web.templating import ROLE_LABELS, can, page, when

router = web_router(prefix="/studies/{study_id}")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]
SUPPLY_DONE = {
    "received": "Shipment received: its kits are available to dispense.",
    "quarantined": "Shipment received with a temperature excursion: its kits are in quarantine until the pharmacist "
    "assesses them.",
}


def quiet(_result: object, events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
    """The answer of an IRT command as stored for an Idempotency-Key: what happened, never a payload (a resupply's
    payload names treatments)."""
    return 200, {"event_types": [event.event_type for event in events]}


def entropy() -> bytes:
    return secrets.token_bytes(32)


def definition_of(connection: Connection, study_id: str) -> StudyDefinition:
    version = version_in_force(connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return version.definition


def arm_names(definition: StudyDefinition) -> dict[str, str]:
    return {arm.id: arm.name for arm in definition.arms}


def sites_allowing(principal: Principal, action: Action, study_id: str, definition: StudyDefinition) -> list[str]:
    """The study's sites at which the principal may do `action`, in the protocol's order."""
    return [site.id for site in definition.sites if can(principal, action, study_id, site.id)]


def role_label(role: str | None) -> str:
    """`investigator`, `study coordinator`: a role as the sentence "Unblinded on … by …" names it."""
    if not role:
        return ""
    try:
        return ROLE_LABELS[Role(role)].lower()
    except ValueError:
        return role.replace("_", " ")


# --- the casebook's IRT panel -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """What the confirmation dialog shows: the stratum and the values that decide it, or why it cannot be decided."""

    stratum: str | None
    levels: list[tuple[str, str]]
    values: list[tuple[str, str]]
    refusal: str | None


def _levels(definition: StudyDefinition, levels: dict[str, str]) -> list[tuple[str, str]]:
    """(factor name, level label) for a stratum's levels, in the protocol's order (the site first when
    randomization is by site)."""
    randomization = definition.randomization
    if randomization is None:
        return []
    factors = {factor.id: factor for factor in randomization.strata.factors}
    order = [f for f in randomization.factor_ids() if f in levels] + [f for f in levels if f not in factors]
    named: list[tuple[str, str]] = []
    for factor_id in dict.fromkeys(order):
        code, factor = levels[factor_id], factors.get(factor_id)
        if factor is None:
            named.append(("Site" if factor_id == SITE_FACTOR else factor_id, code))
            continue
        label = next((level.label for level in factor.levels if level.code == code), code)
        named.append((factor.name, f"{code} ({label})"))
    return named


def _value_label(definition: StudyDefinition, name: str, value: str | None) -> tuple[str, str]:
    """A name the strata read (`DAY1.VS.SYSBP`) with its item's label and unit, and its value."""
    parts = name.split(".")
    form = definition.form(parts[-2]) if len(parts) >= 2 else None
    item = next((i for i in form.items if i.id == parts[-1]), None) if form is not None else None
    unit = f" {item.unit}" if item is not None and item.unit else ""
    shown = "not recorded" if value is None else f"{value}{unit}"
    visits = {visit.id: visit.name for visit in definition.schedule.visits}
    where = f", {visits[parts[0]]}" if len(parts) == 3 and parts[0] in visits else ""
    return (f"{item.label}{where} ({name})" if item is not None else name), shown


def _preview(request: Request, study_id: str, subject_id: str) -> Preview:
    """irt's readiness: the stratum and the values that decide it, or why a randomization would be refused now
    (committed data only, no unit of work)."""
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        try:
            ready = irt.readiness(connection, platform.cache, study_id, subject_id, platform.clock.now().date())
        except TrialStackError as error:
            return Preview(None, [], [], error.message)
        definition = definition_of(connection, study_id)
    refusal = ready.refusal.message if ready.refusal is not None else None
    if ready.stratum is None:
        return Preview(None, [], [], refusal)
    values = [_value_label(definition, name, value) for name, value in ready.stratum.values.items()]
    return Preview(ready.stratum.code, _levels(definition, ready.stratum.levels), values, refusal)


def _panel_context(
    request: Request, principal: Principal, study_id: str, subject_id: str, site_id: str
) -> dict[str, Any]:
    unblinded = principal.is_unblinded(study_id)
    with platform_of(request).engine.connect() as connection:
        definition = definition_of(connection, study_id)
        row = subject_row(connection, study_id, subject_id, unblinded=unblinded) or {}
        given = kits(connection, study_id, unblinded=False, subject_id=subject_id)
    randomized = bool(row.get("number"))
    may_randomize = can(principal, Action.SUBJECT_RANDOMIZE, study_id, site_id)
    preview = None
    if definition.randomization is not None and may_randomize and not randomized and row.get("status") == "enrolled":
        preview = _preview(request, study_id, subject_id)
    visits = {visit.id: visit.name for visit in definition.schedule.visits}
    dispensing = []
    for planned in definition.supply.dispensing if definition.supply else ():
        at_visit = [kit for kit in given if kit["visit"] == planned.visit]
        dispensing.append({"visit": planned.visit, "name": visits.get(planned.visit, planned.visit),
                           "kits": planned.kits, "given": at_visit})  # fmt: skip
    factors = json.loads(row["factors"]) if row.get("factors") else {}
    arm = row.get("arm")
    return {
        "subject_id": subject_id,
        "site_id": site_id,
        "active": definition.randomization is not None or definition.supply is not None,
        "row": row,
        "randomized": randomized,
        "levels": _levels(definition, factors),
        "arm_name": arm_names(definition).get(arm, arm) if unblinded and arm else None,
        "preview": preview,
        "may_randomize": may_randomize and not randomized and row.get("status") == "enrolled",
        "may_dispense": randomized and can(principal, Action.KIT_DISPENSE, study_id, site_id),
        "may_unblind": randomized and can(principal, Action.SUBJECT_UNBLIND, study_id, site_id),
        "dispensing": dispensing,
        "returns": [kit for kit in given if kit["status"] == KitStatus.DISPENSED.value],
        "conditions": CONDITIONS,
        "unblinded_by": role_label(row.get("unblinded_role")),
        "notice": None,
        "errors": {},
        "failed": None,
        "values": {},
    }


def _panel(
    request: Request, principal: Principal, study_id: str, subject_id: str, site_id: str, status: int = 200,
    **extra: Any,
) -> Response:  # fmt: skip
    """The panel alone for htmx (the casebook loads it, and its forms swap it); a page around it otherwise."""
    context = {**_panel_context(request, principal, study_id, subject_id, site_id), **extra}
    name = "irt/_panel.html" if is_htmx(request) else "irt/subject.html"
    return page(request, name, context, principal=principal, study_id=study_id, status_code=status)


@router.get("/subjects/{subject_id}/irt")
def panel(study_id: str, subject_id: str, request: Request, principal: User) -> Response:
    """The subject's randomization, the kits dispensed per visit and returns, and the actions the user may take."""
    _, site_id = authorize_staff_on_subject(request, principal, Action.SUBJECT_READ, study_id, subject_id)
    return _panel(request, principal, study_id, subject_id, site_id)


@router.post("/subjects/{subject_id}/irt/randomize")
def randomize(study_id: str, subject_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Randomize (fresh entropy for a new list); the answer names the number, stratum and date, never the arm."""
    grant, site_id = authorize_staff_on_subject(request, principal, Action.SUBJECT_RANDOMIZE, study_id, subject_id)
    outcome: dict[str, str] = {}

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        randomized = irt.randomize(uow, study_id, cmd.RandomizeSubject(subject_id), entropy)
        outcome.update(number=randomized.number, stratum=randomized.stratum.code)
        return randomized.events

    try:
        run(request, actor_for(principal, grant), None, work, quiet)
    except TrialStackError as error:
        return _panel(request, principal, study_id, subject_id, site_id, 422, errors=errors_of(error),
                      failed="randomize")  # fmt: skip
    notice = f"Subject {subject_id} randomized: randomization number {outcome['number']}, stratum {outcome['stratum']}."
    return _panel(request, principal, study_id, subject_id, site_id, notice=notice)


def _dispensed(events: Sequence[RecordedEvent]) -> list[str]:
    return [str(e.payload["kit"]) for e in events if e.event_type == "KitDispensed"]


@router.post("/subjects/{subject_id}/irt/dispense")
def dispense(study_id: str, subject_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Dispense at a visit: the kit the system assigns, or the kit the site scanned (checked the same way)."""
    grant, site_id = authorize_staff_on_subject(request, principal, Action.KIT_DISPENSE, study_id, subject_id)
    visit = text(posted, "visit") or ""
    values = {"visit": visit, "kit": text(posted, "kit") or ""}
    try:
        if not visit:
            raise InvalidInput("name the visit to dispense at", field="visit")
        command = cmd.DispenseKits(subject_id, visit, text(posted, "kit"))
        given: list[str] = []

        def work(uow: UnitOfWork) -> list[RecordedEvent]:
            events = irt.dispense(uow, study_id, command)
            given[:] = _dispensed(events)
            return events

        run(request, actor_for(principal, grant), None, work, quiet)
    except TrialStackError as error:
        return _panel(request, principal, study_id, subject_id, site_id, 422, errors=errors_of(error),
                      failed=f"dispense:{visit}", values=values)  # fmt: skip
    with platform_of(request).engine.connect() as connection:
        name = next((v.name for v in definition_of(connection, study_id).schedule.visits if v.id == visit), visit)
    kit_text = ", ".join(given)
    notice = f"Kit {kit_text} dispensed at {name}." if len(given) == 1 else f"Kits {kit_text} dispensed at {name}."
    return _panel(request, principal, study_id, subject_id, site_id, notice=notice)


@router.post("/subjects/{subject_id}/irt/return")
def return_kit(study_id: str, subject_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Drug accountability: what came back of a kit dispensed to this subject (units counted, condition)."""
    grant, site_id = authorize_staff_on_subject(request, principal, Action.KIT_DISPENSE, study_id, subject_id)
    kit = text(posted, "kit") or ""
    units = text(posted, "units_returned")
    values = {"units_returned": units or "", "condition": text(posted, "condition") or ""}
    try:
        with platform_of(request).engine.connect() as connection:
            mine = {row["kit"] for row in kits(connection, study_id, unblinded=False, subject_id=subject_id)}
        if kit not in mine:
            raise NotFound(f"kit {kit or '(none)'} was not dispensed to subject {subject_id}", field="kit")
        if units is not None and not (units.isascii() and units.isdigit()):
            raise InvalidInput(
                "units returned is a whole number (leave it empty if not counted)", field="units_returned"
            )
        command = cmd.ReturnKit(kit, int(units) if units is not None else None, text(posted, "condition") or "")
        run(request, actor_for(principal, grant), None, lambda uow: irt.return_kit(uow, study_id, command), quiet)
    except TrialStackError as error:
        return _panel(request, principal, study_id, subject_id, site_id, 422, errors=errors_of(error),
                      failed=f"return:{kit}", values=values)  # fmt: skip
    return _panel(request, principal, study_id, subject_id, site_id, notice=f"Return of kit {kit} recorded.")


# --- emergency unblinding -----------------------------------------------------------------------------------------


def _unblind_context(
    request: Request, principal: Principal, study_id: str, subject_id: str, site_id: str
) -> dict[str, Any]:
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        row = subject_row(connection, study_id, subject_id, unblinded=False) or {}
    return {
        "subject_id": subject_id,
        "site_id": site_id,
        "row": row,
        "unblinded_by": role_label(row.get("unblinded_role")),
        "printed_name": principal.display_name,
        "now": when(platform.clock.now().strftime("%Y-%m-%dT%H:%M:%S")),
        "errors": {},
        "values": {},
    }


@router.get("/subjects/{subject_id}/unblind")
def unblind_page(study_id: str, subject_id: str, request: Request, principal: User) -> Response:
    """The emergency unblinding form: the medical reason, and the investigator's password again."""
    _, site_id = authorize_staff_on_subject(request, principal, Action.SUBJECT_UNBLIND, study_id, subject_id)
    context = _unblind_context(request, principal, study_id, subject_id, site_id)
    return page(request, "irt/unblind.html", context, principal=principal, study_id=study_id)


@router.post("/subjects/{subject_id}/unblind")
def unblind(study_id: str, subject_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Re-authenticate, then break the blind: the treatment is shown in this answer only (never stored, never
    cached); a wrong password or a missing reason refuses and unblinds nothing."""
    grant, site_id = authorize_staff_on_subject(request, principal, Action.SUBJECT_UNBLIND, study_id, subject_id)
    password = posted.get("password")
    reason = text(posted, "reason") or ""
    command = cmd.UnblindSubject(subject_id, reason)
    revealed: dict[str, str] = {}

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        reauthenticate_for_signature(
            uow, principal.username, password if isinstance(password, str) else "", text(posted, "totp")
        )
        unblinded = irt.unblind(uow, study_id, command, principal.username, grant.role.value)
        revealed["treatment"] = unblinded.arm_name
        return unblinded.events

    try:
        run(request, actor_for(principal, grant), None, work, quiet)
    except TrialStackError as error:
        errors = errors_of(error)
        if isinstance(error, NotAuthenticated | TooManyAttempts):
            errors = {"password": error.message}
        context = _unblind_context(request, principal, study_id, subject_id, site_id)
        context.update(errors=errors, values={"reason": reason})
        return page(request, "irt/unblind.html", context, principal=principal, study_id=study_id, status_code=422)
    context = _unblind_context(request, principal, study_id, subject_id, site_id)
    context["treatment"] = revealed["treatment"]
    response = page(request, "irt/unblinded.html", context, principal=principal, study_id=study_id)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the site's supply page ---------------------------------------------------------------------------------------


def _supply_context(request: Request, principal: Principal, study_id: str) -> dict[str, Any]:
    with platform_of(request).engine.connect() as connection:
        definition = definition_of(connection, study_id)
        sites = sites_allowing(principal, Action.SUPPLY_RECEIVE, study_id, definition)
        rows = [row for row in shipments(connection, study_id) if row["site_id"] in sites]
        every_kit = kits(connection, study_id, unblinded=False)
    in_transit: dict[str, list[str]] = {}
    for kit in every_kit:
        if kit["status"] == KitStatus.IN_TRANSIT.value and kit["shipment_id"]:
            in_transit.setdefault(kit["shipment_id"], []).append(kit["kit"])
    shelves = []
    for site_id in sites:
        here = [kit for kit in every_kit if kit["location"] == site_id]
        shelves.append({
            "site_id": site_id,
            "available": [k["kit"] for k in here if k["status"] == KitStatus.AVAILABLE.value],
            "quarantined": [k["kit"] for k in here if k["status"] == KitStatus.QUARANTINED.value],
        })  # fmt: skip
    return {
        "shipments": list(reversed(rows)),
        "in_transit": in_transit,
        "shelves": shelves,
        "sites": sites,
        "errors": {},
        "failed": None,
        "done": None,
    }


@router.get("/supply")
def supply_page(study_id: str, request: Request, principal: User, done: str = "") -> Response:
    """Shipments to the user's sites with their status, receipt of a dispatched one, the kits on each site's shelf
    (kit numbers only)."""
    authorize(principal, Action.SUPPLY_RECEIVE, study_id)
    context = {**_supply_context(request, principal, study_id), "done": SUPPLY_DONE.get(done)}
    return page(request, "irt/supply.html", context, principal=principal, study_id=study_id)


@router.post("/supply/shipments/{shipment_id}/receive")
def receive(study_id: str, shipment_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Confirm the kits that arrived (unticked ones are missing); an excursion sends them to quarantine."""
    authorize(principal, Action.SUPPLY_RECEIVE, study_id)
    with platform_of(request).engine.connect() as connection:
        row = next((r for r in shipments(connection, study_id) if r["shipment_id"] == shipment_id), None)
    if row is None or not can(principal, Action.SUPPLY_RECEIVE, study_id, row["site_id"]):
        raise NotFound(f"no shipment {shipment_id} to your sites", field="shipment")
    grant = authorize(principal, Action.SUPPLY_RECEIVE, study_id, row["site_id"])
    excursion = text(posted, "temperature_excursion") == "yes"
    command = cmd.ReceiveShipment(
        shipment_id,
        tuple(v for v in posted.getlist("kit") if isinstance(v, str) and v),
        excursion,
        text(posted, "note"),
    )
    try:
        run(request, actor_for(principal, grant), None, lambda uow: irt.receive_shipment(uow, study_id, command), quiet)
    except TrialStackError as error:
        context = {**_supply_context(request, principal, study_id), "errors": errors_of(error), "failed": shipment_id}
        return page(request, "irt/supply.html", context, principal=principal, study_id=study_id, status_code=422)
    return redirect(request, f"/studies/{study_id}/supply?done={'quarantined' if excursion else 'received'}")
