"""Randomization: the study's `randomization` stream state, `evolve`, and the decisions. Pure.

The state holds what the next allocation needs and nothing that grows with each decision's cost: entries used per
stratum (permuted blocks) or the counts per factor level and arm (minimization), plus each subject's allocation so
a subject is never randomized twice and dispensing knows the treatment. The list itself and the seed are sealed in
the vault; the handler reveals them and passes them in, as it passes the clock's date.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from types import MappingProxyType

import orjson

from trialstack.consent.events import ConsentView, gate_refusal
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.irt import commands as cmd
from trialstack.irt import events as ev
from trialstack.irt.draws import Draws, seed_commitment
from trialstack.irt.frozen import FrozenMap, with_entries
from trialstack.irt.schemes import MarginCounts, block_list, decimal_text, minimize
from trialstack.irt.strata import RandomizationRefused, Stratum
from trialstack.protocol.definition import GatedAction, Randomization, RandomizationScheme, StudyDefinition

ENROLLED = "enrolled"


class ListNeeded(DomainRuleViolation):
    """The stratum has no list entry left (or minimization has no seed yet): the handler generates one and retries."""

    code = "randomization-list-needed"

    def __init__(self, stratum: str) -> None:
        super().__init__(f"the randomization list has no entry left for stratum {stratum}", field="stratum")
        self.stratum = stratum


@dataclass(frozen=True)
class Allocation:
    subject_id: str
    site_id: str
    number: str
    stratum: str
    levels: Mapping[str, str]
    randomized_on: str
    arm: str | None = None
    unblinded: tuple[ev.EmergencyUnblinded, ...] = ()


@dataclass(frozen=True)
class RandomizationState:
    study_id: str
    version: int = 0
    lists: tuple[ev.RandomizationListGenerated, ...] = ()
    used: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    available: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    margins: MarginCounts = field(default_factory=MarginCounts)
    subjects: FrozenMap[str, Allocation] = field(default_factory=FrozenMap)

    def allocation(self, subject_id: str) -> Allocation | None:
        return self.subjects.get(subject_id)

    def next_list_id(self) -> str:
        return f"L{len(self.lists) + 1}"


def _with(mapping: Mapping[str, int], key: str, add: int) -> Mapping[str, int]:
    return with_entries(mapping, {key: mapping.get(key, 0) + add})


def _set(subjects: FrozenMap[str, Allocation], allocation: Allocation) -> FrozenMap[str, Allocation]:
    return subjects.set({allocation.subject_id: allocation})


def evolve(event: ev.IrtEvent, state: RandomizationState) -> RandomizationState:
    match event:
        case ev.RandomizationListGenerated():
            available = state.available
            for stratum, entries in event.strata.items():
                available = _with(available, stratum, entries)
            return replace(state, lists=(*state.lists, event), available=available)
        case ev.SubjectRandomized():
            allocation = Allocation(
                event.subject_id, event.site_id, event.number, event.stratum,
                MappingProxyType(dict(event.factors)), event.randomized_on,
            )  # fmt: skip
            return replace(state, subjects=_set(state.subjects, allocation), used=_with(state.used, event.stratum, 1))
        case ev.TreatmentAllocated():
            allocation = replace(state.subjects[event.subject_id], arm=event.arm)
            margins = state.margins.add(allocation.levels, event.arm)
            return replace(state, subjects=_set(state.subjects, allocation), margins=margins)
        case ev.EmergencyUnblinded():
            current = state.subjects[event.subject_id]
            allocation = replace(current, unblinded=(*current.unblinded, event))
            return replace(state, subjects=_set(state.subjects, allocation))
    return state


@dataclass(frozen=True)
class SealedList:
    """A generated list as sealed in the vault (`content`, whose SHA-256 is the checksum) and its event."""

    content: bytes
    event: ev.RandomizationListGenerated


def generate_list(
    state: RandomizationState,
    randomization: Randomization,
    strata: Sequence[str],
    seed: bytes,
    study_version: str,
    source: str = "generated",
) -> SealedList:
    """A new list under a fresh secret seed: `list_size` entries (whole blocks) for each stratum; for minimization,
    the seed alone (its draws are made per randomization number)."""
    list_id = state.next_list_id()
    document: dict[str, object] = {"list_id": list_id, "scheme": randomization.scheme.value, "seed": seed.hex()}
    counts: dict[str, int] = {}
    if randomization.scheme is RandomizationScheme.STRATIFIED_BLOCK:
        entries: dict[str, dict[str, list[object]]] = {}
        for stratum in strata:
            draws = Draws(seed, f"{list_id}:{stratum}")
            arms, sizes = block_list(draws, randomization.ratio, randomization.block_sizes, randomization.list_size)
            entries[stratum] = {"arms": list(arms), "blocks": list(sizes)}
            counts[stratum] = len(arms)
        document["strata"] = entries
    content = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    event = ev.RandomizationListGenerated(
        list_id=list_id, scheme=randomization.scheme.value, source=source, strata=counts,
        checksum=hashlib.sha256(content).hexdigest(), seed_commitment=seed_commitment(seed),
        study_version=study_version,
    )  # fmt: skip
    return SealedList(content, event)


@dataclass(frozen=True)
class RevealedLists:
    """The sealed documents of every list, opened: arms per stratum in list order, and the minimization seed."""

    arms: Mapping[str, Sequence[tuple[str, str, int]]]
    """Stratum → (list id, arm, position within that list) for each entry, across lists in order."""
    seed: bytes | None


def reveal_lists(documents: Sequence[bytes]) -> RevealedLists:
    arms: dict[str, list[tuple[str, str, int]]] = {}
    seed: bytes | None = None
    for content in documents:
        document = orjson.loads(content)
        seed = bytes.fromhex(document["seed"]) if document.get("seed") else seed
        for stratum, entries in document.get("strata", {}).items():
            listed = arms.setdefault(stratum, [])
            listed += [(document["list_id"], arm, n + 1) for n, arm in enumerate(entries["arms"])]
    return RevealedLists(MappingProxyType(arms), seed)


@dataclass(frozen=True)
class SubjectStatus:
    """What capture says of the subject (from its events): site and status."""

    site_id: str
    status: str


def _randomization(definition: StudyDefinition) -> Randomization:
    if definition.randomization is None:
        raise RandomizationRefused("this study declares no randomization", field="study")
    return definition.randomization


def decide_randomize(
    state: RandomizationState,
    definition: StudyDefinition,
    subject: SubjectStatus,
    consent: ConsentView,
    stratum: Stratum | RandomizationRefused,
    lists: RevealedLists,
    command: cmd.RandomizeSubject,
    today: date,
    study_version: str,
) -> list[ev.IrtEvent]:
    """The two halves of one randomization: the blinded `SubjectRandomized` and the unblinded `TreatmentAllocated`.

    `stratum` is the refusal itself when the subject's data cannot decide it: said after enrolment and consent."""
    randomization = _randomization(definition)
    earlier = state.allocation(command.subject_id)
    if earlier is not None:
        raise RandomizationRefused(
            f"subject {command.subject_id} was already randomized on {earlier.randomized_on} "
            f"(randomization number {earlier.number})",
            field="subject",
        )
    if subject.status != ENROLLED:
        raise RandomizationRefused(
            f"subject {command.subject_id} is {subject.status.replace('_', ' ')}: only an enrolled subject, "
            "eligible by every criterion, is randomized",
            field="subject",
        )
    refused = gate_refusal(definition, consent, GatedAction.RANDOMIZATION, today, "randomization")
    if refused is not None:
        raise RandomizationRefused(refused, field="consent")
    if isinstance(stratum, RandomizationRefused):
        raise stratum
    number = str(1001 + len(state.subjects))
    allocated = _allocate(state, randomization, stratum, lists, command.subject_id, number)
    randomized = ev.SubjectRandomized(
        subject_id=command.subject_id, site_id=subject.site_id, number=number, stratum=stratum.code,
        factors=stratum.levels, values=stratum.values, scheme=randomization.scheme.value,
        randomized_on=today.isoformat(), study_version=study_version,
    )  # fmt: skip
    return [randomized, allocated]


def _allocate(
    state: RandomizationState,
    randomization: Randomization,
    stratum: Stratum,
    lists: RevealedLists,
    subject_id: str,
    number: str,
) -> ev.TreatmentAllocated:
    if randomization.scheme is RandomizationScheme.MINIMIZATION:
        rule = randomization.minimization
        if lists.seed is None or rule is None:
            raise ListNeeded(stratum.code)
        draws = Draws(lists.seed, f"minimization:{number}")
        assignment = minimize(state.margins, stratum.levels, randomization.ratio, rule, draws)
        imbalance = {arm: decimal_text(total) for arm, total in assignment.totals.items()}
        return ev.TreatmentAllocated(
            subject_id=subject_id, number=number, arm=assignment.arm, imbalance=imbalance,
            preferred=assignment.preferred,
        )  # fmt: skip
    entries = lists.arms.get(stratum.code, ())
    position = state.used.get(stratum.code, 0)
    if position >= len(entries):
        raise ListNeeded(stratum.code)
    list_id, arm, within = entries[position]
    return ev.TreatmentAllocated(subject_id=subject_id, number=number, arm=arm, list_id=list_id, position=within)


def decide_unblind(
    state: RandomizationState, command: cmd.UnblindSubject, username: str, role: str, today: date
) -> list[ev.IrtEvent]:
    allocation = state.allocation(command.subject_id)
    if allocation is None or allocation.arm is None:
        raise NotFound(f"subject {command.subject_id} is not randomized: there is no blind to break", field="subject")
    reason = command.reason.strip()
    if len(reason) < 10:
        raise InvalidInput(
            "emergency unblinding needs the medical reason (at least 10 characters): it is reviewed by the sponsor",
            field="reason",
        )
    return [
        ev.EmergencyUnblinded(
            subject_id=command.subject_id, number=allocation.number, site_id=allocation.site_id, username=username,
            role=role, reason=reason, unblinded_on=today.isoformat(),
        )
    ]  # fmt: skip
