"""The unblinded pharmacy (IRT supply management): inventory by location and status with each kit's treatment, lot
and expiry; shipments (request, dispatch, quarantine release or rejection, a resupply check now); drug
accountability per subject; randomizations with their arms; emergency unblindings.

Only roles unblinded in the study reach these pages: every read needs `allocation.read`, every write
`supply.manage` at the site concerned. Site-scoped pharmacists see their sites and the depots.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from trialstack.api.access import actor_for
from trialstack.api.platform import platform_of
from trialstack.errors import InvalidInput, NotFound, TrialStackError
from trialstack.identity.policy import Action, Principal, authorize
from trialstack.irt import commands as cmd
from trialstack.irt import handlers as irt
from trialstack.irt.readmodel import kits, shipments, subjects, unblindings
from trialstack.irt.supply import CONDITIONS, KitStatus
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import StudyDefinition
from trialstack.web.forms import errors_of, text
from trialstack.web.routes_irt import arm_names, definition_of, quiet, role_label, sites_allowing
from trialstack.web.routing import redirect, web_router
from trialstack.web.run import run
from trialstack.web.session import current_user, posted_form
from trialstack.web.templating import page

router = web_router(prefix="/studies/{study_id}/pharmacy")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]
STATUSES = [status.value for status in KitStatus]
DONE = {
    "requested": "Shipment requested.",
    "dispatched": "Shipment dispatched.",
    "released": "Kits released from quarantine: they are available to dispense again.",
    "rejected": "Kits rejected: they will never be dispensed; return them for destruction.",
}
TABS = {
    "": "Inventory",
    "/shipments": "Shipments",
    "/accountability": "Drug accountability",
    "/randomizations": "Randomizations",
    "/unblindings": "Emergency unblindings",
}


def _scope(request: Request, principal: Principal, study_id: str) -> tuple[StudyDefinition, list[str]]:
    """The study's definition and the sites whose supply the pharmacist sees (Forbidden to a blinded role)."""
    authorize(principal, Action.ALLOCATION_READ, study_id)
    with platform_of(request).engine.connect() as connection:
        definition = definition_of(connection, study_id)
    return definition, sites_allowing(principal, Action.ALLOCATION_READ, study_id, definition)


def _common(definition: StudyDefinition, sites: list[str], tab: str) -> dict[str, Any]:
    depots = [depot.id for depot in definition.supply.depots] if definition.supply else []
    return {
        "tabs": TABS,
        "tab": tab,
        "arms": arm_names(definition),
        "sites": sites,
        "depots": depots,
        "errors": {},
        "failed": None,
        "values": {},
        "done": None,
    }


def _page(request: Request, principal: Principal, study_id: str, name: str, context: dict[str, Any],
          status: int = 200) -> Response:  # fmt: skip
    response = page(request, name, context, principal=principal, study_id=study_id, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- inventory ----------------------------------------------------------------------------------------------------


@router.get("")
def inventory(
    study_id: str, request: Request, principal: User, location: str = "", status: str = "", treatment: str = ""
) -> Response:
    """Kits per location, status and treatment, and the kits themselves (filtered) with lot and expiry."""
    definition, sites = _scope(request, principal, study_id)
    context = _common(definition, sites, "")
    places = [*context["depots"], *sites]
    with platform_of(request).engine.connect() as connection:
        stock = [k for k in kits(connection, study_id, unblinded=True) if k["location"] in places]
    counts = Counter((k["location"], k["status"], k["treatment"]) for k in stock)
    summary = []
    for place in places:
        for state in STATUSES:
            per_arm = {arm: counts[(place, state, arm)] for arm in context["arms"]}
            if any(per_arm.values()):
                summary.append({"location": place, "status": state, "per_arm": per_arm, "total": sum(per_arm.values())})
    shown = [
        k for k in stock
        if (not location or k["location"] == location) and (not status or k["status"] == status)
        and (not treatment or k["treatment"] == treatment)
    ]  # fmt: skip
    context.update(summary=summary, kits=shown, total=len(stock), places=places, statuses=STATUSES,
                   filters={"location": location, "status": status, "treatment": treatment})  # fmt: skip
    return _page(request, principal, study_id, "irt/pharmacy_inventory.html", context)


# --- shipments ----------------------------------------------------------------------------------------------------


def _shipments_context(request: Request, principal: Principal, study_id: str) -> dict[str, Any]:
    definition, sites = _scope(request, principal, study_id)
    context = _common(definition, sites, "/shipments")
    with platform_of(request).engine.connect() as connection:
        rows = [row for row in shipments(connection, study_id) if row["site_id"] in sites]
        quarantined = [
            k for k in kits(connection, study_id, unblinded=True)
            if k["status"] == KitStatus.QUARANTINED.value and k["location"] in sites
        ]  # fmt: skip
    context.update(
        shipments=list(reversed(rows)),
        quarantined=quarantined,
        manage_sites=sites_allowing(principal, Action.SUPPLY_MANAGE, study_id, definition),
    )
    return context


@router.get("/shipments")
def shipments_page(study_id: str, request: Request, principal: User, done: str = "", requested: int = -1) -> Response:
    """Every shipment to the pharmacist's sites; request, dispatch, assess quarantined kits, check resupply."""
    context = _shipments_context(request, principal, study_id)
    if done == "resupply":
        context["done"] = (
            f"Resupply checked: {requested} shipment{'s' if requested != 1 else ''} requested."
            if requested > 0 else "Resupply checked: every site has enough stock, no shipment requested."
        )  # fmt: skip
    else:
        context["done"] = DONE.get(done)
    return _page(request, principal, study_id, "irt/pharmacy_shipments.html", context)


def _refused(request: Request, principal: Principal, study_id: str, error: TrialStackError, failed: str,
             values: dict[str, str] | None = None) -> Response:  # fmt: skip
    context = _shipments_context(request, principal, study_id)
    context.update(errors=errors_of(error), failed=failed, values=values or {})
    return _page(request, principal, study_id, "irt/pharmacy_shipments.html", context, 422)


def _shipment_site(request: Request, study_id: str, shipment_id: str) -> str:
    with platform_of(request).engine.connect() as connection:
        row = next((r for r in shipments(connection, study_id) if r["shipment_id"] == shipment_id), None)
    if row is None:
        raise NotFound(f"no shipment {shipment_id}", field="shipment")
    return str(row["site_id"])


def _base(study_id: str) -> str:
    return f"/studies/{study_id}/pharmacy"


@router.post("/shipments")
def request_shipment(study_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Request a shipment from a depot to a site: kits per treatment, picked by the system (first expiry first)."""
    authorize(principal, Action.SUPPLY_MANAGE, study_id)
    values = {key: value for key, value in posted.items() if isinstance(value, str) and key != "csrf_token"}
    try:
        site_id = text(posted, "site_id") or ""
        if not site_id:
            raise InvalidInput("choose the site to ship to", field="site_id")
        grant = authorize(principal, Action.SUPPLY_MANAGE, study_id, site_id)
        with platform_of(request).engine.connect() as connection:
            arms = arm_names(definition_of(connection, study_id))
        quantities: dict[str, int] = {}
        for arm in arms:
            raw = text(posted, f"qty.{arm}") or "0"
            if not (raw.isascii() and raw.isdigit()):
                raise InvalidInput(f"the number of kits of {arm} is a whole number", field=f"qty.{arm}")
            quantities[arm] = int(raw)
        command = cmd.RequestShipment(site_id, quantities, text(posted, "depot"))
        run(request, actor_for(principal, grant), None, lambda uow: irt.request_shipment(uow, study_id, command), quiet)
    except TrialStackError as error:
        return _refused(request, principal, study_id, error, "request", values)
    return redirect(request, f"{_base(study_id)}/shipments?done=requested")


@router.post("/shipments/{shipment_id}/dispatch")
def dispatch(study_id: str, shipment_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """The depot sends a requested shipment (with the courier's tracking number)."""
    authorize(principal, Action.SUPPLY_MANAGE, study_id)
    grant = authorize(principal, Action.SUPPLY_MANAGE, study_id, _shipment_site(request, study_id, shipment_id))
    command = cmd.DispatchShipment(shipment_id, text(posted, "tracking"))
    try:
        run(
            request, actor_for(principal, grant), None, lambda uow: irt.dispatch_shipment(uow, study_id, command), quiet
        )
    except TrialStackError as error:
        return _refused(request, principal, study_id, error, f"dispatch:{shipment_id}")
    return redirect(request, f"{_base(study_id)}/shipments?done=dispatched")


@router.post("/quarantine")
def assess(study_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Release quarantined kits as usable, or reject them, saying on what evidence."""
    authorize(principal, Action.SUPPLY_MANAGE, study_id)
    chosen = tuple(v for v in posted.getlist("kit") if isinstance(v, str) and v)
    decision = text(posted, "decision")
    values = {"reason": text(posted, "reason") or ""}
    try:
        if decision not in ("release", "reject"):
            raise InvalidInput("release or reject the kits", field="decision")
        with platform_of(request).engine.connect() as connection:
            where = {k["kit"]: k["location"] for k in kits(connection, study_id, unblinded=False)}
        unknown = [kit for kit in chosen if kit not in where]
        if unknown:
            raise NotFound(f"kit {', '.join(unknown)} is not in this study's kit list", field="kits")
        places: list[str | None] = [*sorted({where[kit] for kit in chosen})] or [None]
        grants = [authorize(principal, Action.SUPPLY_MANAGE, study_id, place) for place in places]
        command = cmd.AssessQuarantine(chosen, decision == "release", values["reason"])
        run(request, actor_for(principal, grants[0]), None, lambda uow: irt.assess_quarantine(uow, study_id, command),
            quiet)  # fmt: skip
    except TrialStackError as error:
        return _refused(request, principal, study_id, error, "quarantine", values)
    return redirect(request, f"{_base(study_id)}/shipments?done={'released' if decision == 'release' else 'rejected'}")


@router.post("/resupply")
def resupply(study_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Check the stock of one site, or of every site the pharmacist manages, now (one unit of work per site)."""
    authorize(principal, Action.SUPPLY_MANAGE, study_id)
    with platform_of(request).engine.connect() as connection:
        definition = definition_of(connection, study_id)
    chosen = text(posted, "site_id")
    try:
        if chosen is not None and chosen not in {site.id for site in definition.sites}:
            raise InvalidInput(f"unknown site {chosen!r}", field="site_id")
        targets = [chosen] if chosen else sites_allowing(principal, Action.SUPPLY_MANAGE, study_id, definition)
        requested = 0
        for site_id in targets:
            grant = authorize(principal, Action.SUPPLY_MANAGE, study_id, site_id)

            def work(uow: UnitOfWork, site_id: str = site_id) -> list[RecordedEvent]:
                return irt.resupply_site(uow, study_id, site_id)

            answer = run(request, actor_for(principal, grant), None, work, quiet)
            requested += answer["event_types"].count("ShipmentRequested")
    except TrialStackError as error:
        return _refused(request, principal, study_id, error, "resupply")
    return redirect(request, f"{_base(study_id)}/shipments?done=resupply&requested={requested}")


# --- accountability, randomizations, unblindings -------------------------------------------------------------------


@router.get("/accountability")
def accountability(study_id: str, request: Request, principal: User) -> Response:
    """Per subject: each kit dispensed (visit, date, treatment), and what came back (date, units, condition)."""
    definition, sites = _scope(request, principal, study_id)
    context = _common(definition, sites, "/accountability")
    with platform_of(request).engine.connect() as connection:
        given = [k for k in kits(connection, study_id, unblinded=True) if k["subject_id"] and k["location"] in sites]
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for kit in sorted(given, key=lambda k: (k["subject_id"], k["dispensed_on"] or "", k["kit"])):
        by_subject.setdefault(kit["subject_id"], []).append(kit)
    rows = [
        {"subject_id": subject_id, "kits": found, "returned": sum(1 for k in found if k["returned_on"]),
         "units": sum(k["units_returned"] or 0 for k in found)}
        for subject_id, found in by_subject.items()
    ]  # fmt: skip
    context.update(rows=rows, conditions=CONDITIONS)
    return _page(request, principal, study_id, "irt/pharmacy_accountability.html", context)


@router.get("/randomizations")
def randomizations(study_id: str, request: Request, principal: User) -> Response:
    """Every randomized subject at the pharmacist's sites with number, stratum, date and arm."""
    definition, sites = _scope(request, principal, study_id)
    context = _common(definition, sites, "/randomizations")
    with platform_of(request).engine.connect() as connection:
        rows = [r for r in subjects(connection, study_id, unblinded=True, sites=frozenset(sites)) if r["number"]]
    for row in rows:
        row["unblinded_by"] = role_label(row.get("unblinded_role"))
    context["rows"] = sorted(rows, key=lambda r: r["number"])
    return _page(request, principal, study_id, "irt/pharmacy_randomizations.html", context)


@router.get("/unblindings")
def unblindings_page(study_id: str, request: Request, principal: User) -> Response:
    """Each emergency unblinding: who, when, why (the sponsor reviews them)."""
    definition, sites = _scope(request, principal, study_id)
    context = _common(definition, sites, "/unblindings")
    with platform_of(request).engine.connect() as connection:
        rows = unblindings(connection, study_id, frozenset(sites))
    for row in rows:
        row["role_label"] = role_label(row["role"])
    context["rows"] = rows
    return _page(request, principal, study_id, "irt/pharmacy_unblindings.html", context)
