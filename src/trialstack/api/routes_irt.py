"""IRT endpoints: randomization (the confirmation preview, randomizing, emergency unblinding) and drug supply (kit
lists, shipments, receipt, quarantine, dispensing, returns, resupply, randomization lists).

Blinding (DESIGN §5): a subject's arm and a kit's treatment are read only through the irt read model's
`unblinded=` functions, with `auth.unblinded`; no answer to a blinded caller holds either, not even hidden, and
refusals never name a treatment (irt.supply words them so). The one exception is emergency unblinding: the
investigator re-authenticates (as for an electronic signature) and the arm goes back to them, in that answer only
(never stored in the ledger: EmergencyUnblinded says who, when and why).

Who may call what:
- the subject's randomization: SUBJECT_READ (read, with the preview), SUBJECT_RANDOMIZE, SUBJECT_UNBLIND and
  KIT_DISPENSE at the subject's site; a kit's return: KIT_DISPENSE at the kit's site;
- kits and shipments: read with SUPPLY_RECEIVE (site staff, who need the kit numbers of a shipment to receive
  it, and the pharmacist), scoped to the caller's sites, the treatment only for unblinded callers; a receipt:
  SUPPLY_RECEIVE at the shipment's site; everything else that moves stock: SUPPLY_MANAGE;
- the allocations (numbers, strata, arms): ALLOCATION_READ; unblindings (without arm): SUBJECT_READ, scoped.

Every write runs through `execute` (one unit of work, bounded retries, Idempotency-Key); a refusal is a problem
naming the field, and nothing of the request is written.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, select

from trialstack.api.access import subject_site_of, visible_sites
from trialstack.api.commands import execute
from trialstack.api.openapi import AUTHENTICATED_ERRORS, WRITE_ERRORS
from trialstack.api.platform import platform_of
from trialstack.api.problems import TYPE_BASE, problem
from trialstack.api.schemas_irt import (
    DispatchRequest,
    DispensationRequest,
    KitGeneration,
    KitListImport,
    KitReturnRequest,
    QuarantineAssessment,
    RandomizationListImport,
    RandomizationListRequest,
    RandomizationRequest,
    ReceiptRequest,
    ShipmentRequest,
    UnblindingRequest,
)
from trialstack.api.security import Authorized, requires
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound, TrialStackError
from trialstack.identity.authentication import reauthenticate_for_signature
from trialstack.identity.policy import Action, Forbidden, Principal, authorize
from trialstack.irt import commands as cmd
from trialstack.irt import handlers, imports
from trialstack.irt.readmodel import kit_table, kits, shipment_table, shipments, subject_row, subjects, unblindings
from trialstack.irt.strata import all_strata
from trialstack.irt.supply import KitStatus
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import RandomizationScheme, StudyDefinition
from trialstack.protocol.readmodel import version_in_force

T = TypeVar("T")
router = APIRouter(prefix="/api/v1/studies/{study_id}", tags=["irt"], responses=AUTHENTICATED_ERRORS)
SUBJECT = "/subjects/{subject_id}"


class StratumChanged(DomainRuleViolation):
    """The subject's data now decide another stratum than the one the confirmation dialog showed."""

    code = "stratum-changed"


class ListAlreadyGenerated(DomainRuleViolation):
    code = "randomization-list-exists"


def entropy() -> bytes:
    """A fresh secret seed for a randomization list or a kit list (the tests and the demo pass seeded sources)."""
    return secrets.token_bytes(32)


# --- where a kit or a shipment is (site resolvers for `requires`) ---------------------------------------------------


def _kit_location(connection: Connection, study_id: str, kit: str) -> str | None:
    row = connection.execute(
        select(kit_table.c.location).where(kit_table.c.study_id == study_id, kit_table.c.kit == kit)
    ).first()
    return None if row is None else str(row.location)


def _shipment_site(connection: Connection, study_id: str, shipment_id: str) -> str | None:
    row = connection.execute(
        select(shipment_table.c.site_id).where(
            shipment_table.c.study_id == study_id, shipment_table.c.shipment_id == shipment_id
        )
    ).first()
    return None if row is None else str(row.site_id)


def kit_site_of(request: Request, principal: Principal) -> str:
    """Site resolver: where the kit in the path is (not found outside the user's sites)."""
    study_id, kit = request.path_params["study_id"], request.path_params["kit"]
    with platform_of(request).engine.connect() as connection:
        location = _kit_location(connection, study_id, kit)
    sites = visible_sites(principal, study_id)
    if location is None or (sites is not None and location not in sites):
        raise NotFound(f"kit {kit} not found in study {study_id}", field="kit")
    return location


def shipment_site_of(request: Request, principal: Principal) -> str:
    """Site resolver: the site the shipment in the path goes to (not found outside the user's sites)."""
    study_id, shipment_id = request.path_params["study_id"], request.path_params["shipment_id"]
    with platform_of(request).engine.connect() as connection:
        site_id = _shipment_site(connection, study_id, shipment_id)
    sites = visible_sites(principal, study_id)
    if site_id is None or (sites is not None and site_id not in sites):
        raise NotFound(f"shipment {shipment_id} not found in study {study_id}", field="shipment_id")
    return site_id


SubjectRead = Annotated[Authorized, requires(Action.SUBJECT_READ, site=subject_site_of)]
Randomizing = Annotated[Authorized, requires(Action.SUBJECT_RANDOMIZE, site=subject_site_of)]
Unblinding = Annotated[Authorized, requires(Action.SUBJECT_UNBLIND, site=subject_site_of)]
Dispensing = Annotated[Authorized, requires(Action.KIT_DISPENSE, site=subject_site_of)]
Returning = Annotated[Authorized, requires(Action.KIT_DISPENSE, site=kit_site_of)]
SupplyRead = Annotated[Authorized, requires(Action.SUPPLY_RECEIVE, site=None)]
Receiving = Annotated[Authorized, requires(Action.SUPPLY_RECEIVE, site=shipment_site_of)]
SupplyManage = Annotated[Authorized, requires(Action.SUPPLY_MANAGE, site=None)]
Dispatching = Annotated[Authorized, requires(Action.SUPPLY_MANAGE, site=shipment_site_of)]
AllocationRead = Annotated[Authorized, requires(Action.ALLOCATION_READ, site=None)]
UnblindingsRead = Annotated[Authorized, requires(Action.SUBJECT_READ, site=None)]
KitPath = Annotated[str, Path(min_length=1, max_length=40, description="A kit number")]
ShipmentPath = Annotated[str, Path(min_length=1, max_length=20, description="A shipment (SH-0001)")]


# --- shared -------------------------------------------------------------------------------------------------------


def _events_json(events: list[RecordedEvent]) -> list[dict[str, Any]]:
    """What a write appended, by type and position only (a blinded event's payload never leaves the ledger)."""
    return [{"study_seq": e.study_seq, "event_type": e.event_type, "stream_id": e.stream_id} for e in events]


def _definition(connection: Connection, study_id: str) -> StudyDefinition:
    version = version_in_force(connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return version.definition


def _may(auth: Authorized, action: Action) -> bool:
    try:
        authorize(auth.principal, action, auth.study_id)
    except Forbidden:
        return False
    return True


def _run(
    request: Request,
    auth: Authorized,
    body: Any,
    work: Callable[[UnitOfWork], T],
    answer: Callable[[T, list[RecordedEvent]], dict[str, Any]],
    status: int = 201,
) -> JSONResponse:
    """One IRT command through `execute`: the answer, plus every event the unit appended (by type)."""

    def render(result: T, events: list[RecordedEvent]) -> tuple[int, dict[str, Any]]:
        return status, {**answer(result, events), "events": _events_json(events)}

    return execute(platform_of(request), auth.actor, request, body, work, render)


def _check_arms(definition: StudyDefinition, quantities: dict[str, int]) -> None:
    arms = {arm.id for arm in definition.arms}
    for arm in quantities:
        if arm not in arms:
            raise InvalidInput(f"{arm!r} is not a treatment of this study", field=f"quantities.{arm}")


# --- randomization --------------------------------------------------------------------------------------------------


def _refusal_json(error: TrialStackError) -> dict[str, Any]:
    return {"type": TYPE_BASE + error.code, "detail": error.message, "field": error.field}


@router.get(f"{SUBJECT}/randomization")
def get_randomization(study_id: str, subject_id: str, request: Request, auth: SubjectRead) -> dict[str, Any]:
    """The subject's randomization: number, stratum, the factor levels and the values that decided them, the date,
    and each emergency unblinding (when, by which role); the arm for unblinded callers only. Not yet randomized:
    the preview the confirmation dialog shows (the stratum and values it would use) or why it would be refused."""
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        row = subject_row(connection, study_id, subject_id, unblinded=auth.unblinded)
        if row is None:
            raise NotFound(f"subject {subject_id} not found in study {study_id}", field="subject")
        base = {"subject_id": subject_id, "site_id": row["site_id"], "status": row["status"]}
        if row["number"] is not None:
            broken = unblindings(connection, study_id, frozenset({row["site_id"]}))
            answer = {
                **base,
                "randomized": True,
                "number": row["number"],
                "stratum": row["stratum"],
                "factors": json.loads(row["factors"] or "{}"),
                "values": json.loads(row["stratum_values"] or "{}"),
                "randomized_on": row["randomized_on"],
                "unblinded": [
                    {"on": u["unblinded_on"], "role": u["role"]} for u in broken if u["subject_id"] == subject_id
                ],
            }
            if auth.unblinded:
                answer["arm"] = row["arm"]
            return answer
        ready = handlers.readiness(connection, platform.cache, study_id, subject_id, platform.clock.now().date())
    randomization, stratum, refusal = ready.randomization, ready.stratum, ready.refusal
    return {
        **base,
        "randomized": False,
        "preview": {
            "visit": randomization.visit,
            "scheme": randomization.scheme.value,
            "ready": refusal is None,
            "stratum": stratum.code if stratum is not None else None,
            "factors": stratum.levels if stratum is not None else None,
            "values": stratum.values if stratum is not None else None,
            "refusal": _refusal_json(refusal) if refusal is not None else None,
        },
    }


@router.post(f"{SUBJECT}/randomization", status_code=201, responses=WRITE_ERRORS)
def post_randomization(
    study_id: str, subject_id: str, request: Request, auth: Randomizing, body: RandomizationRequest | None = None
) -> JSONResponse:
    """Randomize the subject (enrolled, consented, every stratification value recorded): the randomization number
    and stratum; the arm only for an unblinded caller. The first randomization seals the list from a fresh secret
    seed. Refused (409, naming `subject`, `consent`, `stratification` or `stratum`) with nothing written."""
    wanted = body.stratum if body is not None else None

    def work(uow: UnitOfWork) -> handlers.Randomized:
        randomized = handlers.randomize(uow, study_id, cmd.RandomizeSubject(subject_id), entropy)
        if wanted is not None and randomized.stratum.code != wanted:  # raised before commit: nothing is kept
            raise StratumChanged(
                f"the subject's data now decide stratum {randomized.stratum.code}, not {wanted} as confirmed: "
                "review the values and confirm again",
                field="stratum",
            )
        return randomized

    def answer(result: handlers.Randomized, events: list[RecordedEvent]) -> dict[str, Any]:
        randomized = next(e.payload for e in result.events if e.event_type == "SubjectRandomized")
        shown = {
            "subject_id": subject_id,
            "site_id": randomized["site_id"],
            "number": result.number,
            "stratum": result.stratum.code,
            "factors": result.stratum.levels,
            "values": result.stratum.values,
            "scheme": randomized["scheme"],
            "randomized_on": randomized["randomized_on"],
        }
        return {**shown, "arm": result.arm} if auth.unblinded else shown

    return _run(request, auth, body, work, answer)


@router.post(f"{SUBJECT}/unblinding", responses=WRITE_ERRORS)
def post_unblinding(
    study_id: str, subject_id: str, body: UnblindingRequest, request: Request, auth: Unblinding
) -> JSONResponse:
    """Emergency unblinding by the investigator: re-authentication (password, and one-time code if the account
    has one) and the medical reason. The answer, to this caller only, holds the arm and its name; the ledger
    records who, when, in which role and why (never the arm). A wrong password is recorded (SignatureFailed) and
    answered 401 with nothing unblinded."""
    username, role = auth.principal.username, auth.grant.role.value
    command = cmd.UnblindSubject(subject_id, body.reason)

    def work(uow: UnitOfWork) -> handlers.Unblinded:
        reauthenticate_for_signature(uow, username, body.password, body.totp)
        return handlers.unblind(uow, study_id, command, username, role)

    def answer(result: handlers.Unblinded, events: list[RecordedEvent]) -> dict[str, Any]:
        unblinded = next(e.payload for e in result.events if e.event_type == "EmergencyUnblinded")
        return {
            "subject_id": subject_id,
            "number": unblinded["number"],
            "arm": result.arm,
            "arm_name": result.arm_name,
            "unblinded_on": unblinded["unblinded_on"],
            "unblinded_by": unblinded["username"],
            "role": unblinded["role"],
            "reason": unblinded["reason"],
        }

    secretless = body.model_copy(update={"password": "", "totp": None})
    response = _run(request, auth, secretless, work, answer, status=200)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- dispensing and returns -----------------------------------------------------------------------------------------


@router.post(f"{SUBJECT}/dispensations", status_code=201, responses=WRITE_ERRORS)
def post_dispensation(
    study_id: str, subject_id: str, body: DispensationRequest, request: Request, auth: Dispensing
) -> JSONResponse:
    """Dispense at a dispensing visit: the kit numbers the system assigns (or the scanned `kit`, checked the same
    way). Refused (409 naming `kit`, `visit`, `subject` or `consent`) for a kit quarantined, expiring within the
    do-not-dispense days, elsewhere or not the subject's; the site's stock is checked and resupplied if due."""
    command = cmd.DispenseKits(subject_id, body.visit, body.kit)

    def answer(recorded: list[RecordedEvent], events: list[RecordedEvent]) -> dict[str, Any]:
        dispensed = [e.payload for e in recorded if e.event_type == "KitDispensed"]
        return {
            "subject_id": subject_id,
            "visit": body.visit,
            "kits": [d["kit"] for d in dispensed],
            "dispensed_on": dispensed[0]["dispensed_on"] if dispensed else None,
            "resupply_shipments": [e.payload["shipment_id"] for e in recorded if e.event_type == "ShipmentRequested"],
        }

    return _run(request, auth, body, lambda uow: handlers.dispense(uow, study_id, command), answer)


@router.post("/kits/{kit}/return", status_code=201, responses=WRITE_ERRORS)
def post_kit_return(
    study_id: str, kit: KitPath, body: KitReturnRequest, request: Request, auth: Returning
) -> JSONResponse:
    """Drug accountability: a dispensed kit comes back (units counted, condition)."""
    command = cmd.ReturnKit(kit, body.units_returned, body.condition)

    def answer(recorded: list[RecordedEvent], events: list[RecordedEvent]) -> dict[str, Any]:
        returned = recorded[0].payload
        return {
            "kit": kit,
            "subject_id": returned["subject_id"],
            "returned_on": returned["returned_on"],
            "units_returned": returned.get("units_returned"),
            "condition": returned["condition"],
        }

    return _run(request, auth, body, lambda uow: handlers.return_kit(uow, study_id, command), answer)


# --- kits and shipments ---------------------------------------------------------------------------------------------

_FILE_COLUMNS = frozenset({"file", "kit", "kits", "treatment", "lot", "expiry", "stratum", "arm", "position"})
_LINE = re.compile(r"\bline (\d+)")
_COLUMN = re.compile(r"\bcolumn (\w+)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
KIT_COLUMN_LIMITS = {"kit": 40, "lot": 40}
"""The read model's widths (rm_irt_kit) for what a kit list carries as free text."""


def _file_bytes(text: str, name: str) -> bytes:
    """The file's UTF-8 bytes (what its checksum covers); control characters are refused with their line."""
    control = _CONTROL.search(text)
    if control is not None:
        line = text.count("\n", 0, control.start()) + 1
        raise InvalidInput(
            f"{name} line {line}: control character U+{ord(control[0]):04X} (a text file has none)", field="csv"
        )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidInput(f"{name}: character {error.start + 1} is not text (a lone surrogate)", field="csv") from None


def _file_problem(error: InvalidInput) -> JSONResponse:
    """A refused file as a problem naming `csv`, with the `line` and `column` when the message names them."""
    if error.field not in _FILE_COLUMNS and error.field != "csv":
        raise error
    extra: dict[str, Any] = {}
    line, column = _LINE.search(error.message), _COLUMN.search(error.message)
    if line is not None:
        extra["line"] = int(line.group(1))
    if column is not None:
        extra["column"] = column.group(1)
    elif error.field in _FILE_COLUMNS and error.field not in ("file", "kits"):
        extra["column"] = error.field
    return problem(422, "Invalid input", error.message, error.code, "csv", **extra)


def _fits_columns(entries: tuple[cmd.KitEntry, ...], name: str) -> None:
    for entry in entries:
        for column, limit in KIT_COLUMN_LIMITS.items():
            value = getattr(entry, column).strip()
            if len(value) > limit:
                raise InvalidInput(
                    f"{name} line {entry.line}, column {column}: {value[:20]!r}… is longer than {limit} characters",
                    field=column,
                )


def _kit_json(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != "study_id"}


def _kit_visible(
    row: dict[str, Any], sites: frozenset[str] | None, bound: dict[str, str], site_ids: set[str], depots: bool
) -> bool:
    """At one of the caller's sites, in a shipment to one of them, or (for a supply manager) at a depot."""
    if sites is None or row["location"] in sites:
        return True
    if row["shipment_id"] is not None and bound.get(row["shipment_id"]) in sites:
        return True
    return depots and row["location"] not in site_ids


@router.get("/irt/kits")
def get_kits(
    study_id: str,
    request: Request,
    auth: SupplyRead,
    location: Annotated[str | None, Query(min_length=1, max_length=40, description="A depot or a site")] = None,
    status: Annotated[KitStatus | None, Query(description="Only kits in this status")] = None,
    shipment: Annotated[str | None, Query(min_length=1, max_length=20, description="Only this shipment")] = None,
) -> dict[str, Any]:
    """Kits at the caller's sites (and bound for them), and at the depots for supply managers: number, lot,
    expiry, location, status, shipment, the subject and visit it went to, its return; `treatment` only for
    unblinded callers."""
    sites = auth.sites
    with platform_of(request).engine.connect() as connection:
        definition = _definition(connection, study_id)
        bound = {str(s["shipment_id"]): str(s["site_id"]) for s in shipments(connection, study_id)}
        rows = kits(connection, study_id, unblinded=auth.unblinded, location=location)
    site_ids = {site.id for site in definition.sites}
    depots = _may(auth, Action.SUPPLY_MANAGE)
    listed = [
        _kit_json(row)
        for row in rows
        if (status is None or row["status"] == status.value)
        and (shipment is None or row["shipment_id"] == shipment)
        and _kit_visible(row, sites, bound, site_ids, depots)
    ]
    counts = Counter(str(row["status"]) for row in listed)
    return {"kits": listed, "count": len(listed), "by_status": dict(sorted(counts.items()))}


@router.get("/irt/shipments")
def get_shipments(study_id: str, request: Request, auth: SupplyRead) -> dict[str, Any]:
    """Shipments to the caller's sites: depot, site, status, dates, tracking, the kit numbers, what was missing and
    any temperature excursion; the kits per treatment only for unblinded callers."""
    sites = auth.sites
    with platform_of(request).engine.connect() as connection:
        rows = [row for row in shipments(connection, study_id) if sites is None or row["site_id"] in sites]
        stock = kits(connection, study_id, unblinded=auth.unblinded)
    numbers: dict[str, list[str]] = {}
    treatments: dict[str, Counter[str]] = {}
    for kit in stock:
        if kit["shipment_id"] is not None:
            numbers.setdefault(kit["shipment_id"], []).append(kit["kit"])
            if auth.unblinded:
                treatments.setdefault(kit["shipment_id"], Counter())[kit["treatment"]] += 1
    listed = []
    for row in rows:
        shipment = {key: value for key, value in row.items() if key != "study_id"}
        shipment["temperature_excursion"] = (
            None if row["temperature_excursion"] is None else bool(row["temperature_excursion"])
        )
        shipment["kit_numbers"] = numbers.get(row["shipment_id"], [])
        if auth.unblinded:
            shipment["quantities"] = dict(sorted(treatments.get(row["shipment_id"], Counter()).items()))
        listed.append(shipment)
    return {"shipments": listed}


@router.post("/irt/kits", status_code=201, responses=WRITE_ERRORS)
def post_kit_list(study_id: str, body: KitListImport, request: Request, auth: SupplyManage) -> JSONResponse:
    """Receive a kit list from the packaging vendor into a depot: JSON with the file's text in `csv` (columns kit,
    treatment, lot, expiry YYYY-MM-DD; comma, semicolon or tab) and, when the vendor sent one, its SHA-256 in
    `checksum`. The whole file is checked first: a bad row (a duplicate kit number, an unknown treatment, a date
    that is not one) is refused as a problem naming `csv` with the `line` and `column`, and nothing is kept."""
    name = body.file_name

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        data = _file_bytes(body.csv, name)
        if body.checksum is None or body.checksum.lower() == imports.sha256_hex(data):
            _fits_columns(imports.parse_kit_list(data, name), name)
        return imports.import_kit_list(uow, study_id, body.depot, data, name, body.checksum)

    def answer(recorded: list[RecordedEvent], events: list[RecordedEvent]) -> dict[str, Any]:
        registered = recorded[0].payload
        return {"depot": registered["depot"], "registered": len(registered["kits"]),
                "source": registered["source"], "checksum": registered["checksum"]}  # fmt: skip

    try:
        return _run(request, auth, body, work, answer)
    except InvalidInput as error:
        return _file_problem(error)


@router.post("/irt/kits/generate", status_code=201, responses=WRITE_ERRORS)
def post_kit_generation(study_id: str, body: KitGeneration, request: Request, auth: SupplyManage) -> JSONResponse:
    """Generate and register a kit list at a depot: `quantities` kits per treatment, numbered from
    `first_number` in random order across treatments (so no number reveals one), one lot and expiry."""
    quantities = dict(body.quantities)

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        _check_arms(handlers.study_version_of(uow, study_id).definition, quantities)
        try:
            return handlers.generate_kit_list(
                uow, study_id, body.depot, quantities, body.lot, body.expiry, body.first_number, entropy
            )
        except InvalidInput as error:
            if error.field == "kit":  # a number already registered: the range overlaps an earlier list
                raise InvalidInput(error.message, field="first_number") from None
            raise

    def answer(recorded: list[RecordedEvent], events: list[RecordedEvent]) -> dict[str, Any]:
        registered = recorded[0].payload
        numbers = [k["kit"] for k in registered["kits"]]
        return {"depot": registered["depot"], "registered": len(numbers), "lot": body.lot,
                "expiry": body.expiry.isoformat(), "first_number": numbers[0], "last_number": numbers[-1],
                "checksum": registered["checksum"]}  # fmt: skip

    return _run(request, auth, body, work, answer)


def _shipment_json(payload: dict[str, Any]) -> dict[str, Any]:
    return {"shipment_id": payload["shipment_id"], "depot": payload["depot"], "site_id": payload["site_id"],
            "kits": payload["kits"], "reason": payload["reason"], "requested_on": payload["requested_on"]}  # fmt: skip


@router.post("/irt/shipments", status_code=201, responses=WRITE_ERRORS)
def post_shipment(study_id: str, body: ShipmentRequest, request: Request, auth: SupplyManage) -> JSONResponse:
    """Request a shipment to a site: kits per treatment picked at the depot, first expiry first, none that would
    expire within the do-not-dispense days. Refused (409 naming `quantities`) when the depot has too few."""
    with platform_of(request).engine.connect() as connection:
        definition = _definition(connection, study_id)
    if body.site_id not in {site.id for site in definition.sites}:
        raise InvalidInput(f"unknown site {body.site_id!r}", field="site_id")
    at_site = auth.at_site(body.site_id)
    command = cmd.RequestShipment(body.site_id, dict(body.quantities), body.depot)

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        _check_arms(definition, command.quantities)
        return handlers.request_shipment(uow, study_id, command)

    def answer(recorded: list[RecordedEvent], events: list[RecordedEvent]) -> dict[str, Any]:
        return _shipment_json(recorded[0].payload)

    return _run(request, at_site, body, work, answer)


@router.post("/irt/shipments/{shipment_id}/dispatch", responses=WRITE_ERRORS)
def post_dispatch(
    study_id: str, shipment_id: ShipmentPath, body: DispatchRequest, request: Request, auth: Dispatching
) -> JSONResponse:
    """The depot dispatches a requested shipment (with the courier's tracking number)."""
    command = cmd.DispatchShipment(shipment_id, body.tracking)

    def answer(recorded: list[RecordedEvent], events: list[RecordedEvent]) -> dict[str, Any]:
        dispatched = recorded[0].payload
        return {"shipment_id": shipment_id, "dispatched_on": dispatched["dispatched_on"],
                "tracking": dispatched.get("tracking")}  # fmt: skip

    return _run(request, auth, body, lambda uow: handlers.dispatch_shipment(uow, study_id, command), answer, 200)


@router.post("/irt/shipments/{shipment_id}/receipt", status_code=201, responses=WRITE_ERRORS)
def post_receipt(
    study_id: str, shipment_id: ShipmentPath, body: ReceiptRequest, request: Request, auth: Receiving
) -> JSONResponse:
    """The site confirms the kits that arrived (the others are recorded missing); with a temperature excursion
    they go straight to quarantine until the supply manager assesses them."""
    command = cmd.ReceiveShipment(shipment_id, tuple(body.kits), body.temperature_excursion, body.note or None)

    def answer(recorded: list[RecordedEvent], events: list[RecordedEvent]) -> dict[str, Any]:
        received = next(e.payload for e in recorded if e.event_type == "ShipmentReceived")
        quarantined: list[str] = next((e.payload["kits"] for e in recorded if e.event_type == "KitsQuarantined"), [])
        return {"shipment_id": shipment_id, "site_id": received["site_id"], "received_on": received["received_on"],
                "received": received["kits"], "missing": received["missing"],
                "temperature_excursion": received["temperature_excursion"], "quarantined": quarantined}  # fmt: skip

    return _run(request, auth, body, lambda uow: handlers.receive_shipment(uow, study_id, command), answer)


@router.post("/irt/quarantine", responses=WRITE_ERRORS)
def post_quarantine_assessment(
    study_id: str, body: QuarantineAssessment, request: Request, auth: SupplyManage
) -> JSONResponse:
    """Assess quarantined kits: release them as usable (`release: true`) or reject them, with the evidence."""
    with platform_of(request).engine.connect() as connection:
        definition = _definition(connection, study_id)
        locations = {_kit_location(connection, study_id, kit) for kit in set(body.kits)}
    site_ids = {site.id for site in definition.sites}
    for location in sorted(loc for loc in locations if loc in site_ids):
        auth.at_site(location)  # a site-bound supply manager assesses kits at their sites only
    command = cmd.AssessQuarantine(tuple(body.kits), body.release, body.reason)

    def answer(recorded: list[RecordedEvent], events: list[RecordedEvent]) -> dict[str, Any]:
        assessed = recorded[0].payload
        return {"kits": assessed["kits"], "status": "available" if body.release else "rejected",
                "reason": assessed["reason"]}  # fmt: skip

    return _run(request, auth, body, lambda uow: handlers.assess_quarantine(uow, study_id, command), answer, 200)


@router.post("/irt/resupply", responses=WRITE_ERRORS)
def post_resupply(study_id: str, request: Request, auth: SupplyManage) -> JSONResponse:
    """Check the stock of every site (the caller's) now, counting the kits the visits due soon will need, and
    request a shipment wherever it falls below the minimum; a depot's shortfall is recorded, never hidden."""

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        definition = handlers.study_version_of(uow, study_id).definition
        sites = auth.sites
        appended: list[RecordedEvent] = []
        for site in definition.sites:
            if sites is None or site.id in sites:
                appended += handlers.resupply_site(uow, study_id, site.id)
        return appended

    def answer(recorded: list[RecordedEvent], events: list[RecordedEvent]) -> dict[str, Any]:
        triggered = []
        for event in recorded:
            if event.event_type != "ResupplyTriggered":
                continue
            p = event.payload
            shown = {"site_id": p["site_id"], "reason": p["reason"], "shipment_id": p["shipment_id"],
                     "shortfall": p["shortfall"]}  # fmt: skip
            triggered.append({**shown, "needs": p["needs"]} if auth.unblinded else shown)
        requested = [_shipment_json(e.payload) for e in recorded if e.event_type == "ShipmentRequested"]
        return {"resupplies": triggered, "shipments": requested}

    return _run(request, auth, None, work, answer, 200)


# --- allocations, unblindings, lists --------------------------------------------------------------------------------


@router.get("/irt/unblindings")
def get_unblindings(study_id: str, request: Request, auth: UnblindingsRead) -> dict[str, Any]:
    """Every emergency unblinding at the caller's sites: the subject, who, in which role, when and why (never the
    arm)."""
    with platform_of(request).engine.connect() as connection:
        rows = unblindings(connection, study_id, auth.sites)
    return {
        "unblindings": [
            {"subject_id": r["subject_id"], "number": r["number"], "site_id": r["site_id"], "username": r["username"],
             "role": r["role"], "unblinded_on": r["unblinded_on"], "reason": r["reason"]}
            for r in rows
        ]
    }  # fmt: skip


@router.get("/irt/randomizations")
def get_randomizations(study_id: str, request: Request, auth: AllocationRead) -> dict[str, Any]:
    """Every randomized subject at the caller's sites: number, stratum, factor levels, date, arm, unblinding; and
    the count per stratum and arm."""
    with platform_of(request).engine.connect() as connection:
        rows = [r for r in subjects(connection, study_id, unblinded=auth.unblinded, sites=auth.sites) if r["number"]]
    listed = []
    per_stratum: dict[str, Counter[str]] = {}
    for row in sorted(rows, key=lambda r: str(r["number"])):
        entry = {
            "subject_id": row["subject_id"], "site_id": row["site_id"], "status": row["status"],
            "number": row["number"], "stratum": row["stratum"], "factors": json.loads(row["factors"] or "{}"),
            "randomized_on": row["randomized_on"], "unblinded_on": row["unblinded_on"],
        }  # fmt: skip
        if auth.unblinded:
            entry["arm"] = row["arm"]
            per_stratum.setdefault(str(row["stratum"]), Counter())[str(row["arm"])] += 1
        listed.append(entry)
    answer: dict[str, Any] = {"randomizations": listed}
    if auth.unblinded:
        answer["by_stratum"] = {stratum: dict(sorted(c.items())) for stratum, c in sorted(per_stratum.items())}
    return answer


def _list_json(recorded: list[RecordedEvent]) -> dict[str, Any]:
    generated = next(e.payload for e in recorded if e.event_type == "RandomizationListGenerated")
    return {
        "list_id": generated["list_id"],
        "scheme": generated["scheme"],
        "source": generated["source"],
        "strata": generated["strata"],
        "checksum": generated["checksum"],
        "seed_commitment": generated["seed_commitment"],
        "file_checksum": generated.get("file_checksum"),
    }


@router.post("/irt/randomization-list", status_code=201, responses=WRITE_ERRORS)
def post_randomization_list(
    study_id: str, request: Request, auth: SupplyManage, body: RandomizationListRequest | None = None
) -> JSONResponse:
    """Generate the randomization list now from a fresh secret seed, sealed in the vault (the study goes live);
    otherwise the first randomization does it. A list exists already: name the `strata` to extend."""
    strata = list(dict.fromkeys(body.strata)) if body is not None and body.strata is not None else None

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        definition = handlers.study_version_of(uow, study_id).definition
        randomization = definition.randomization
        if randomization is None:
            raise InvalidInput(f"study {study_id} declares no randomization", field="study")
        state = handlers.load_randomization(uow, study_id)
        existing = ", ".join(listed.list_id for listed in state.lists)
        if state.lists and (strata is None or randomization.scheme is RandomizationScheme.MINIMIZATION):
            extend = "" if randomization.scheme is RandomizationScheme.MINIMIZATION else ": name the strata to extend"
            raise ListAlreadyGenerated(f"the study already has randomization list {existing}{extend}", field="strata")
        if strata is not None:
            known = set(all_strata(definition))
            unknown = [code for code in strata if code not in known]
            if unknown:
                raise InvalidInput(f"unknown strata {', '.join(unknown)} (strata: {', '.join(sorted(known))})",
                                   field="strata")  # fmt: skip
        return handlers.generate_randomization_list(uow, study_id, entropy, strata)

    return _run(request, auth, body, work, lambda recorded, _events: _list_json(recorded))


@router.post("/irt/randomization-list/import", status_code=201, responses=WRITE_ERRORS)
def post_randomization_list_import(
    study_id: str, body: RandomizationListImport, request: Request, auth: SupplyManage
) -> JSONResponse:
    """Import a pre-generated list from the statistician: JSON with the file's text in `csv` (columns stratum,
    arm, optionally position) and the SHA-256 they sent separately in `checksum`. A file whose SHA-256 differs is
    refused (`checksum`); a bad row is refused naming `csv` with the `line` and `column`; nothing is kept."""

    def work(uow: UnitOfWork) -> list[RecordedEvent]:
        data = _file_bytes(body.csv, body.file_name)
        return imports.import_randomization_list(uow, study_id, data, body.file_name, body.checksum)

    try:
        return _run(request, auth, body, work, lambda recorded, _events: _list_json(recorded))
    except InvalidInput as error:
        return _file_problem(error)
