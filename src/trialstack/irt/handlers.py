"""IRT use cases: randomize, break the blind, register kits, ship, receive, assess quarantine, dispense, return,
resupply. Each is one command in the adapter's unit of work.

The subject's status and visit dates come from irt's read model (capture's events), the values that decide the
stratum from the subject's capture stream, consent from the consent stream (`consent.events.see`), the list and
the seed from the vault (sealed under the study's IRT key, which only the system opens). Secret seeds are inputs:
the adapter passes fresh entropy (`secrets.token_bytes`), the demo and the tests a seeded source.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from types import MappingProxyType

from sqlalchemy import Connection

from trialstack.clock import utc_timestamp
from trialstack.consent.events import ConsentView, see
from trialstack.errors import InvalidInput, NotFound, TrialStackError
from trialstack.irt import commands as cmd
from trialstack.irt import events as ev
from trialstack.irt.draws import Draws
from trialstack.irt.forecast import SubjectOutlook, demand
from trialstack.irt.model import (
    ListNeeded,
    RandomizationState,
    RevealedLists,
    SubjectStatus,
    decide_randomize,
    decide_unblind,
    generate_list,
    reveal_lists,
)
from trialstack.irt.model import evolve as evolve_randomization
from trialstack.irt.readmodel import subject_row, subjects, visit_dates
from trialstack.irt.strata import (
    CompiledStrata,
    RandomizationRefused,
    Stratum,
    SubjectData,
    all_strata,
    compile_strata,
    stratify,
)
from trialstack.irt.supply import (
    DispenseContext,
    SupplyState,
    decide_assess,
    decide_dispatch,
    decide_dispense,
    decide_receive,
    decide_register,
    decide_request_shipment,
    decide_resupply,
    decide_return,
    generate_kits,
)
from trialstack.irt.supply import evolve as evolve_supply
from trialstack.ledger import store
from trialstack.ledger.cache import StreamLoad, StreamStateCache, load_streams
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.registry import decode, encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import Randomization
from trialstack.protocol.readmodel import version_in_force
from trialstack.protocol.version import StudyVersion

IRT = "irt"
SUBJECT = "subject"
CONSENT = "consent"
SYSTEM_IRT = Actor(id="system:irt", role="system")
Entropy = Callable[[], bytes]


def randomization_stream(study_id: str) -> str:
    return f"{study_id}/randomization"


def supply_stream(study_id: str) -> str:
    return f"{study_id}/supply"


def vault_owner(study_id: str) -> str:
    """The vault owner of the study's randomization lists and seeds: only the system opens it."""
    return f"irt:{study_id}"


def _fold_randomization(state: RandomizationState, events: Sequence[RecordedEvent]) -> RandomizationState:
    for recorded in events:
        payload = decode(recorded)
        if isinstance(payload, ev.IrtEvent):
            state = evolve_randomization(payload, state)
    return replace(state, version=events[-1].stream_version) if events else state


def _fold_supply(state: SupplyState, events: Sequence[RecordedEvent]) -> SupplyState:
    for recorded in events:
        payload = decode(recorded)
        if isinstance(payload, ev.IrtEvent):
            state = evolve_supply(payload, state)
    return replace(state, version=events[-1].stream_version) if events else state


def _randomization_load(study_id: str) -> StreamLoad[RandomizationState]:
    return StreamLoad(IRT, randomization_stream(study_id), RandomizationState(study_id), _fold_randomization)


def load_randomization(uow: UnitOfWork, study_id: str) -> RandomizationState:
    state: RandomizationState = uow.load_many([_randomization_load(study_id)])[0]
    return state


def load_supply(uow: UnitOfWork, study_id: str) -> SupplyState:
    return uow.load(IRT, supply_stream(study_id), SupplyState(study_id), _fold_supply)


def study_version_of(uow: UnitOfWork, study_id: str) -> StudyVersion:
    return _version_at(uow.connection, study_id)


def _version_at(connection: Connection, study_id: str) -> StudyVersion:
    version = version_in_force(connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return version


def _today(uow: UnitOfWork) -> date:
    return uow.clock.now().date()


def subject_status(connection: Connection, study_id: str, subject_id: str) -> tuple[SubjectStatus, dict[str, date]]:
    row = subject_row(connection, study_id, subject_id, unblinded=False)
    if row is None:
        raise NotFound(f"subject {subject_id} not found in study {study_id}", field="subject")
    return SubjectStatus(row["site_id"], row["status"]), visit_dates(row["visit_dates"])


def consent_of(connection: Connection, study_id: str, subject_id: str) -> ConsentView:
    view = ConsentView()
    for recorded in store.read_stream(connection, CONSENT, f"{study_id}/{subject_id}"):
        view = see(view, decode(recorded))
    return view


_VALUE_EVENTS = frozenset({"ItemValueEntered", "ItemValueChanged", "ItemMarkedNotDone", "ItemValueDerived"})


def subject_data(connection: Connection, study_id: str, subject_id: str, site_id: str) -> SubjectData:
    """The subject's values as capture recorded them; sealed (personal) values count as missing: they never leave
    the vault, so a protocol cannot stratify on them."""
    values: dict[tuple[str, str], str | None] = {}
    dates: dict[str, str] = {}
    for recorded in store.read_stream(connection, SUBJECT, f"{study_id}/{subject_id}"):
        payload, kind = recorded.payload, recorded.event_type
        if kind in _VALUE_EVENTS:
            sealed = payload.get("value_hash") is not None
            values[(payload["form"], payload["item"])] = None if sealed else payload.get("value")
        elif kind == "VisitDateRecorded":
            dates[payload["visit"]] = payload["visit_date"]
    return SubjectData(site_id, values, dates)


_COMPILED: dict[str, CompiledStrata] = {}


def compiled_strata(version: StudyVersion) -> CompiledStrata:
    compiled = _COMPILED.get(version.hash)
    if compiled is None:
        compiled = _COMPILED[version.hash] = compile_strata(version.definition)
    return compiled


def revealed_lists(uow: UnitOfWork, state: RandomizationState) -> RevealedLists:
    documents: list[bytes] = []
    for listed in state.lists:
        content = uow.vault.fetch_document(uow.connection, vault_owner(state.study_id), listed.checksum)
        if content is None:
            raise NotFound(f"randomization list {listed.list_id} is not in the vault", field="list")
        documents.append(content)
    return reveal_lists(documents)


def _append(uow: UnitOfWork, study_id: str, stream: str, state_version: int, events: Sequence[ev.IrtEvent],
            actor: Actor | None = None) -> list[RecordedEvent]:  # fmt: skip
    if not events:
        return []
    return uow.append(study_id, IRT, stream, [encode(e) for e in events], expected_version=state_version, actor=actor)


def generate_randomization_list(
    uow: UnitOfWork, study_id: str, entropy: Entropy, strata: Sequence[str] | None = None, actor: Actor | None = None
) -> list[RecordedEvent]:
    """Seal a new list (every stratum of the protocol, or `strata`) under a fresh seed, as the unit's user (or
    `actor`: the system, when a randomization needs it)."""
    state = load_randomization(uow, study_id)
    version = study_version_of(uow, study_id)
    randomization = version.definition.randomization
    if randomization is None:
        raise InvalidInput(f"study {study_id} declares no randomization", field="study")
    sealed = generate_list(state, randomization, strata or all_strata(version.definition), entropy(), version.hash)
    uow.vault.store_document(uow.connection, vault_owner(study_id), sealed.content, utc_timestamp(uow.clock.now()))
    return _append(uow, study_id, randomization_stream(study_id), state.version, [sealed.event], actor)


@dataclass(frozen=True)
class Randomized:
    events: list[RecordedEvent]
    number: str
    stratum: Stratum
    arm: str


def _stratum(connection: Connection, version: StudyVersion, study_id: str, subject_id: str) -> Stratum:
    """The stratum the subject falls in now, and the values that decide it (or RandomizationRefused saying why not)."""
    status, _dates = subject_status(connection, study_id, subject_id)
    randomization = version.definition.randomization
    if randomization is None:
        raise RandomizationRefused(f"study {study_id} declares no randomization", field="study")
    data = subject_data(connection, study_id, subject_id, status.site_id)
    return stratify(randomization, compiled_strata(version), version.definition, data)


@dataclass(frozen=True)
class Readiness:
    """What the confirmation dialog shows before a randomization: the stratum and values it would use, and why it
    would be refused now (None: it would go ahead). No list is opened and no arm is drawn."""

    randomization: Randomization
    stratum: Stratum | None
    refusal: TrialStackError | None


def readiness(
    connection: Connection, cache: StreamStateCache, study_id: str, subject_id: str, today: date
) -> Readiness:
    """Read committed data only (no unit of work, no write lock): the same decision `randomize` makes, in order
    (already randomized, enrolment, consent, stratification), given no list."""
    version = _version_at(connection, study_id)
    randomization = version.definition.randomization
    if randomization is None:
        raise NotFound(f"study {study_id} declares no randomization", field="study")
    status, _dates = subject_status(connection, study_id, subject_id)
    (state,) = [f.state for f in load_streams(connection, cache, [_randomization_load(study_id)])]
    stratum: Stratum | RandomizationRefused
    try:
        stratum = _stratum(connection, version, study_id, subject_id)
    except RandomizationRefused as refused:
        stratum = refused
    decided = stratum if isinstance(stratum, Stratum) else None
    no_list = RevealedLists(MappingProxyType({}), None)
    command = cmd.RandomizeSubject(subject_id)
    try:
        consent = consent_of(connection, study_id, subject_id)
        decide_randomize(state, version.definition, status, consent, stratum, no_list, command, today, version.hash)
    except ListNeeded:
        return Readiness(randomization, decided, None)
    except TrialStackError as refused:
        return Readiness(randomization, decided, refused)
    return Readiness(randomization, decided, None)


def randomize(uow: UnitOfWork, study_id: str, command: cmd.RandomizeSubject, entropy: Entropy) -> Randomized:
    """Randomize one subject; a first randomization (or a stratum that used its list up) seals a new list first."""
    version = study_version_of(uow, study_id)
    definition = version.definition
    status, _dates = subject_status(uow.connection, study_id, command.subject_id)
    consent = consent_of(uow.connection, study_id, command.subject_id)
    stratum: Stratum | RandomizationRefused
    try:
        stratum = _stratum(uow.connection, version, study_id, command.subject_id)
    except RandomizationRefused as refusal:
        stratum = refusal
    appended: list[RecordedEvent] = []
    for _attempt in range(2):
        state = load_randomization(uow, study_id)
        try:
            decided = decide_randomize(
                state, definition, status, consent, stratum, revealed_lists(uow, state), command, _today(uow),
                version.hash,
            )  # fmt: skip
        except ListNeeded as needed:
            strata = None if not state.lists else [needed.stratum]
            if strata is None and needed.stratum not in all_strata(definition):
                strata = [*all_strata(definition), needed.stratum]
            appended += generate_randomization_list(uow, study_id, entropy, strata, SYSTEM_IRT)
            continue
        appended += _append(uow, study_id, randomization_stream(study_id), state.version, decided)
        allocated = decided[1]
        assert isinstance(allocated, ev.TreatmentAllocated) and isinstance(stratum, Stratum)
        return Randomized(appended, allocated.number, stratum, allocated.arm)
    raise AssertionError("a freshly generated list always has an entry for the stratum")


@dataclass(frozen=True)
class Unblinded:
    events: list[RecordedEvent]
    arm: str
    arm_name: str


def unblind(uow: UnitOfWork, study_id: str, command: cmd.UnblindSubject, username: str, role: str) -> Unblinded:
    """Break the blind for one subject: the event says who, when and why; the arm goes back to this caller only."""
    state = load_randomization(uow, study_id)
    decided = decide_unblind(state, command, username, role, _today(uow))
    events = _append(uow, study_id, randomization_stream(study_id), state.version, decided)
    allocation = state.allocation(command.subject_id)
    assert allocation is not None and allocation.arm is not None
    arms = {arm.id: arm.name for arm in study_version_of(uow, study_id).definition.arms}
    return Unblinded(events, allocation.arm, arms.get(allocation.arm, allocation.arm))


def _supply_command(
    uow: UnitOfWork, study_id: str, decide: Callable[[SupplyState], list[ev.IrtEvent]], actor: Actor | None = None
) -> list[RecordedEvent]:
    state = load_supply(uow, study_id)
    return _append(uow, study_id, supply_stream(study_id), state.version, decide(state), actor)


def register_kits(uow: UnitOfWork, study_id: str, command: cmd.RegisterKits) -> list[RecordedEvent]:
    definition = study_version_of(uow, study_id).definition
    return _supply_command(uow, study_id, lambda state: decide_register(state, definition, command))


def generate_kit_list(
    uow: UnitOfWork, study_id: str, depot: str, quantities: dict[str, int], lot: str, expiry: date, first_number: int,
    entropy: Entropy,
) -> list[RecordedEvent]:  # fmt: skip
    """Register a generated kit list: numbers drawn at random across treatments from a fresh seed."""
    if any(n < 0 for n in quantities.values()) or not any(quantities.values()):
        raise InvalidInput("give a positive number of kits for at least one treatment", field="quantities")
    entries = generate_kits(Draws(entropy(), "kits"), quantities, lot, expiry, first_number)
    checksum = hashlib.sha256("\n".join(f"{e.kit},{e.treatment},{e.lot},{e.expiry}" for e in entries).encode())
    command = cmd.RegisterKits(depot, tuple(entries), "generated", checksum.hexdigest())
    return register_kits(uow, study_id, command)


def request_shipment(uow: UnitOfWork, study_id: str, command: cmd.RequestShipment) -> list[RecordedEvent]:
    definition = study_version_of(uow, study_id).definition
    today = _today(uow)
    return _supply_command(uow, study_id, lambda state: decide_request_shipment(state, definition, command, today))


def dispatch_shipment(uow: UnitOfWork, study_id: str, command: cmd.DispatchShipment) -> list[RecordedEvent]:
    today = _today(uow)
    return _supply_command(uow, study_id, lambda state: decide_dispatch(state, command, today))


def receive_shipment(uow: UnitOfWork, study_id: str, command: cmd.ReceiveShipment) -> list[RecordedEvent]:
    today = _today(uow)
    return _supply_command(uow, study_id, lambda state: decide_receive(state, command, today))


def assess_quarantine(uow: UnitOfWork, study_id: str, command: cmd.AssessQuarantine) -> list[RecordedEvent]:
    return _supply_command(uow, study_id, lambda state: decide_assess(state, command))


def return_kit(uow: UnitOfWork, study_id: str, command: cmd.ReturnKit) -> list[RecordedEvent]:
    today = _today(uow)
    return _supply_command(uow, study_id, lambda state: decide_return(state, command, today))


def dispense(uow: UnitOfWork, study_id: str, command: cmd.DispenseKits) -> list[RecordedEvent]:
    """Dispense at a visit, then check the site's stock (a resupply, if due, is the system's, in the same unit)."""
    version = study_version_of(uow, study_id)
    status, dates = subject_status(uow.connection, study_id, command.subject_id)
    allocation = load_randomization(uow, study_id).allocation(command.subject_id)
    consent = consent_of(uow.connection, study_id, command.subject_id)
    context = DispenseContext(allocation, status, consent, dates.get(command.visit))
    events = _supply_command(
        uow, study_id,
        lambda state: decide_dispense(state, version.definition, context, command, _today(uow), version.hash),
    )  # fmt: skip
    return events + resupply_site(uow, study_id, status.site_id)


def resupply_site(uow: UnitOfWork, study_id: str, site_id: str) -> list[RecordedEvent]:
    """Resupply one site if its stock is (or, with the visits due soon, will be) below its minimum."""
    definition = study_version_of(uow, study_id).definition
    if definition.supply is None:
        return []
    today = _today(uow)
    allocations = load_randomization(uow, study_id).subjects
    outlook = [
        SubjectOutlook(row["subject_id"], row["site_id"], row["status"], visit_dates(row["visit_dates"]))
        for row in subjects(uow.connection, study_id, unblinded=False, sites=frozenset({site_id}))
    ]

    def decide(state: SupplyState) -> list[ev.IrtEvent]:
        needed = demand(definition, outlook, allocations, state.dispensed, today).get(site_id, {})
        return decide_resupply(state, definition, site_id, needed, today)

    return _supply_command(uow, study_id, decide, SYSTEM_IRT)


def resupply_study(unit_of_work: Callable[[Actor], UnitOfWork], study_id: str) -> int:
    """Check every site's stock, one unit of work each; returns the number of events appended."""
    appended = 0
    with unit_of_work(SYSTEM_IRT) as uow:
        sites = [site.id for site in study_version_of(uow, study_id).definition.sites]
    for site_id in sites:
        with unit_of_work(SYSTEM_IRT) as uow:
            appended += len(resupply_site(uow, study_id, site_id))
            uow.commit()
    return appended
