"""Randomization decided and folded without a database: who may be randomized, numbers, lists, minimization's
seed, emergency unblinding."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from trialstack.consent import events as cev
from trialstack.consent.events import ConsentView, see
from trialstack.errors import InvalidInput, NotFound
from trialstack.irt import commands as cmd
from trialstack.irt import events as ev
from trialstack.irt.draws import Draws, seed_commitment
from trialstack.irt.model import (
    ListNeeded,
    RandomizationState,
    RevealedLists,
    SubjectStatus,
    decide_randomize,
    decide_unblind,
    evolve,
    generate_list,
    reveal_lists,
)
from trialstack.irt.schemes import minimize
from trialstack.irt.strata import RandomizationRefused, Stratum
from trialstack.protocol.definition import (
    Imbalance,
    Minimization,
    Randomization,
    RandomizationScheme,
    StudyDefinition,
)
from trialstack.standards.loader import load_study_file

DEMO = Path(__file__).resolve().parents[3] / "studies" / "demo" / "study.yaml"
SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))
TODAY = date(2026, 3, 10)
VERSION = "h" * 64


@pytest.fixture(scope="module")
def demo() -> StudyDefinition:
    return load_study_file(DEMO)


def _view(*events: object) -> ConsentView:
    view = ConsentView()
    for event in events:
        view = see(view, event)
    return view


def _paper(subject_id: str, version: str = "1.0", signed_on: str = "2026-03-01") -> cev.ConsentRecordedOnPaper:
    return cev.ConsentRecordedOnPaper(
        subject_id=subject_id, site_id="0101", document_id="ICF", version=version, language="en",
        signed_on=signed_on, obtained_by="cora", obtained_by_name="Cora", choices=[],
    )  # fmt: skip


def consented(subject_id: str = "0101-001") -> ConsentView:
    return _view(_paper(subject_id))


ENROLLED = SubjectStatus("0101", "enrolled")


def stratum(site: str = "0101", level: str = "LT160") -> Stratum:
    sbp = "150" if level == "LT160" else "171"
    return Stratum(f"{site}/{level}", {"SITE": site, "BLSBP": level}, {"DAY1.VS.SYSBP": sbp})


def with_list(
    state: RandomizationState, randomization: Randomization, strata: list[str], seed: bytes = SEED
) -> RandomizationState:
    return evolve(generate_list(state, randomization, strata, seed, VERSION).event, state)


def lists_of(
    state: RandomizationState, randomization: Randomization, strata_per_list: list[list[str]]
) -> RevealedLists:
    """The documents the vault would hold for the state's lists, regenerated from the same seeds."""
    documents = []
    replay = RandomizationState(state.study_id)
    for strata in strata_per_list:
        sealed = generate_list(replay, randomization, strata, SEED, VERSION)
        documents.append(sealed.content)
        replay = evolve(sealed.event, replay)
    return reveal_lists(documents)


def randomized(
    state: RandomizationState,
    definition: StudyDefinition,
    lists: RevealedLists,
    subject_id: str,
    where: Stratum,
    status: SubjectStatus = ENROLLED,
) -> tuple[RandomizationState, list[ev.IrtEvent]]:
    decided = decide_randomize(
        state, definition, status, consented(subject_id), where, lists, cmd.RandomizeSubject(subject_id), TODAY,
        VERSION,
    )  # fmt: skip
    for event in decided:
        state = evolve(event, state)
    return state, decided


def _randomization(demo: StudyDefinition) -> Randomization:
    assert demo.randomization is not None
    return demo.randomization


def test_numbers_are_sequential_and_each_stratum_takes_its_own_list_entries_in_order(demo: StudyDefinition) -> None:
    randomization = _randomization(demo)
    strata = ["0101/LT160", "0101/GE160"]
    state = with_list(RandomizationState("HTN-201"), randomization, strata)
    lists = lists_of(state, randomization, [strata])
    order = ["LT160", "GE160", "LT160", "LT160", "GE160", "LT160"]
    numbers: list[str] = []
    for n, level in enumerate(order):
        state, decided = randomized(state, demo, lists, f"0101-{n:03d}", stratum(level=level))
        subject, allocated = decided
        assert isinstance(subject, ev.SubjectRandomized) and isinstance(allocated, ev.TreatmentAllocated)
        assert subject.number == allocated.number and subject.stratum == f"0101/{level}"
        assert subject.factors == {"SITE": "0101", "BLSBP": level} and subject.randomized_on == "2026-03-10"
        numbers.append(subject.number)
    assert numbers == [str(1001 + n) for n in range(len(order))]
    for level in ("LT160", "GE160"):
        code = f"0101/{level}"
        given = [a.arm for a in state.subjects.values() if a.stratum == code]
        assert given == [arm for _, arm, _ in lists.arms[code][: len(given)]]
        assert state.used[code] == order.count(level)


def test_a_subject_is_never_randomized_twice(demo: StudyDefinition) -> None:
    randomization = _randomization(demo)
    state = with_list(RandomizationState("HTN-201"), randomization, ["0101/LT160"])
    lists = lists_of(state, randomization, [["0101/LT160"]])
    state, _ = randomized(state, demo, lists, "0101-001", stratum())
    with pytest.raises(RandomizationRefused, match=r"already randomized on 2026-03-10 \(randomization number 1001\)"):
        randomized(state, demo, lists, "0101-001", stratum())


@pytest.mark.parametrize(
    ("status", "said"), [("screening", "screening"), ("screen_failed", "screen failed"), ("withdrawn", "withdrawn")]
)
def test_only_an_enrolled_subject_is_randomized(demo: StudyDefinition, status: str, said: str) -> None:
    randomization = _randomization(demo)
    state = with_list(RandomizationState("HTN-201"), randomization, ["0101/LT160"])
    lists = lists_of(state, randomization, [["0101/LT160"]])
    with pytest.raises(RandomizationRefused, match=f"subject 0101-001 is {said}: only an enrolled subject") as refused:
        randomized(state, demo, lists, "0101-001", stratum(), SubjectStatus("0101", status))
    assert refused.value.field == "subject"


WITHDRAWN = cev.ConsentWithdrawn(subject_id="0101-001", document_id="ICF", continues=[], withdrawn_on="2026-03-05")


def _due(on: str) -> cev.ReconsentRequired:
    return cev.ReconsentRequired(
        subject_id="0101-001", document_id="ICF", version="2.0", previous_version="1.0", study_version=VERSION,
        required_on=on,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("consent", "said"),
    [
        (_view(), "randomization needs consent to ICF .*: it has not been signed"),
        (_view(_paper("0101-001"), WITHDRAWN), "consent to ICF was withdrawn on 2026-03-05"),
        (_view(_paper("0101-001"), _due("2026-03-10")), r"re-consent to ICF version 2\.0 is required since 2026-03-10"),
    ],
    ids=["not signed", "withdrawn", "re-consent due"],
)
def test_randomization_waits_for_current_consent(demo: StudyDefinition, consent: ConsentView, said: str) -> None:
    randomization = _randomization(demo)
    state = with_list(RandomizationState("HTN-201"), randomization, ["0101/LT160"])
    lists = lists_of(state, randomization, [["0101/LT160"]])
    command = cmd.RandomizeSubject("0101-001")
    with pytest.raises(RandomizationRefused, match=said) as refused:
        decide_randomize(state, demo, ENROLLED, consent, stratum(), lists, command, TODAY, VERSION)
    assert refused.value.field == "consent"


def test_a_reconsent_due_later_or_already_signed_does_not_hold_randomization_back(demo: StudyDefinition) -> None:
    randomization = _randomization(demo)
    state = with_list(RandomizationState("HTN-201"), randomization, ["0101/LT160"])
    lists = lists_of(state, randomization, [["0101/LT160"]])
    command = cmd.RandomizeSubject("0101-001")
    for consent in (
        _view(_paper("0101-001"), _due("2026-03-11")),
        _view(_paper("0101-001"), _due("2026-03-05"), _paper("0101-001", "2.0", "2026-03-06")),
    ):
        decided = decide_randomize(state, demo, ENROLLED, consent, stratum(), lists, command, TODAY, VERSION)
        assert [type(e) for e in decided] == [ev.SubjectRandomized, ev.TreatmentAllocated]


def test_a_stratum_the_data_cannot_decide_is_refused_only_after_enrolment_and_consent(demo: StudyDefinition) -> None:
    randomization = _randomization(demo)
    state = with_list(RandomizationState("HTN-201"), randomization, ["0101/LT160"])
    lists = lists_of(state, randomization, [["0101/LT160"]])
    undecided = RandomizationRefused("stratification factor BLSBP cannot be decided: DAY1.VS.SYSBP not recorded")
    command = cmd.RandomizeSubject("0101-001")
    with pytest.raises(RandomizationRefused, match="BLSBP cannot be decided"):
        decide_randomize(state, demo, ENROLLED, consented(), undecided, lists, command, TODAY, VERSION)
    with pytest.raises(RandomizationRefused, match="is screening"):
        decide_randomize(state, demo, SubjectStatus("0101", "screening"), consented(), undecided, lists, command,
                         TODAY, VERSION)  # fmt: skip
    with pytest.raises(RandomizationRefused, match="has not been signed"):
        decide_randomize(state, demo, ENROLLED, _view(), undecided, lists, command, TODAY, VERSION)


def test_a_stratum_without_entries_left_asks_for_a_list_and_the_next_list_carries_on(demo: StudyDefinition) -> None:
    randomization = _randomization(demo).model_copy(update={"list_size": 4, "block_sizes": (4,)})
    definition = demo.model_copy(update={"randomization": randomization})
    empty = RandomizationState("HTN-201")
    with pytest.raises(ListNeeded) as needed:
        randomized(empty, definition, RevealedLists({}, None), "0101-000", stratum())
    assert needed.value.stratum == "0101/LT160"

    state = with_list(empty, randomization, ["0101/LT160", "0101/GE160"])
    first = lists_of(state, randomization, [["0101/LT160", "0101/GE160"]])
    for n in range(4):
        state, _ = randomized(state, definition, first, f"0101-{n:03d}", stratum())
    with pytest.raises(ListNeeded) as needed:
        randomized(state, definition, first, "0101-004", stratum())
    assert needed.value.stratum == "0101/LT160" and needed.value.code == "randomization-list-needed"
    state, _ = randomized(state, definition, first, "0101-005", stratum(level="GE160"))  # the other stratum goes on

    state = with_list(state, randomization, ["0101/LT160"])
    both = lists_of(state, randomization, [["0101/LT160", "0101/GE160"], ["0101/LT160"]])
    state, decided = randomized(state, definition, both, "0101-004", stratum())
    allocated = decided[1]
    assert isinstance(allocated, ev.TreatmentAllocated)
    assert (allocated.list_id, allocated.position, allocated.number) == ("L2", 1, "1006")
    assert allocated.arm == both.arms["0101/LT160"][4][1]
    first_block = [state.subjects[f"0101-00{n}"].arm for n in range(4)]
    assert sorted(str(arm) for arm in first_block) == ["PBO", "PBO", "ZEL", "ZEL"]


def _minimizing(demo: StudyDefinition) -> tuple[StudyDefinition, Randomization]:
    rule = Minimization(imbalance=Imbalance.RANGE, probability=Decimal("0.8"), weights={"SITE": 1, "BLSBP": 2})
    randomization = _randomization(demo).model_copy(
        update={"scheme": RandomizationScheme.MINIMIZATION, "minimization": rule, "block_sizes": ()}
    )
    return demo.model_copy(update={"randomization": randomization}), randomization


def _minimized(definition: StudyDefinition, seed: bytes, subjects: int) -> list[ev.TreatmentAllocated]:
    assert definition.randomization is not None
    state = with_list(RandomizationState("HTN-201"), definition.randomization, [], seed)
    document = generate_list(RandomizationState("HTN-201"), definition.randomization, [], seed, VERSION).content
    lists = reveal_lists([document])
    allocated: list[ev.TreatmentAllocated] = []
    for n in range(subjects):
        where = stratum(site=("0101", "0102")[n % 2], level=("LT160", "GE160")[n % 3 == 0])
        before = state
        state, decided = randomized(state, definition, lists, f"S{n:03d}", where)
        event = decided[1]
        assert isinstance(event, ev.TreatmentAllocated)
        rule = definition.randomization.minimization
        assert rule is not None
        expected = minimize(
            before.margins, where.levels, definition.randomization.ratio, rule, Draws(seed, f"minimization:{1001 + n}")
        )
        assert event.arm == expected.arm and event.preferred is expected.preferred
        assert event.imbalance is not None and set(event.imbalance) == {"PBO", "ZEL"}
        allocated.append(event)
    return allocated


def test_minimization_draws_from_the_sealed_seed_alone(demo: StudyDefinition) -> None:
    definition, randomization = _minimizing(demo)
    with pytest.raises(ListNeeded):
        randomized(RandomizationState("HTN-201"), definition, RevealedLists({}, None), "S000", stratum())
    sealed = generate_list(RandomizationState("HTN-201"), randomization, ["0101/LT160"], SEED, VERSION)
    assert sealed.event.strata == {} and sealed.event.seed_commitment == seed_commitment(SEED)
    assert orjson.loads(sealed.content) == {"list_id": "L1", "scheme": "minimization", "seed": SEED.hex()}
    assert reveal_lists([sealed.content]).seed == SEED

    first = _minimized(definition, SEED, 40)
    assert _minimized(definition, SEED, 40) == first  # the same seed gives the same allocations, imbalances included
    assert [e.arm for e in _minimized(definition, OTHER_SEED, 40)] != [e.arm for e in first]
    assert {e.preferred for e in first} >= {True, None}
    assert all(e.list_id is None and e.position is None for e in first)


def test_a_study_without_randomization_refuses(demo: StudyDefinition) -> None:
    definition = demo.model_copy(update={"randomization": None})
    with pytest.raises(RandomizationRefused, match="declares no randomization"):
        randomized(RandomizationState("HTN-201"), definition, RevealedLists({}, None), "S000", stratum())


def test_unblinding_needs_a_randomized_subject_and_a_medical_reason(demo: StudyDefinition) -> None:
    randomization = _randomization(demo)
    state = with_list(RandomizationState("HTN-201"), randomization, ["0101/LT160"])
    lists = lists_of(state, randomization, [["0101/LT160"]])
    reason = "anaphylaxis, treating physician needs the arm"
    with pytest.raises(NotFound, match="0101-001 is not randomized"):
        decide_unblind(state, cmd.UnblindSubject("0101-001", reason), "ivan", "investigator", TODAY)
    state, _ = randomized(state, demo, lists, "0101-001", stratum())
    for short in ("", "rash", "  123456789  "):
        with pytest.raises(InvalidInput, match="at least 10 characters") as refused:
            decide_unblind(state, cmd.UnblindSubject("0101-001", short), "ivan", "investigator", TODAY)
        assert refused.value.field == "reason"
    decided = decide_unblind(state, cmd.UnblindSubject("0101-001", f"  {reason} "), "ivan", "investigator", TODAY)
    assert decided == [
        ev.EmergencyUnblinded(
            subject_id="0101-001", number="1001", site_id="0101", username="ivan", role="investigator",
            reason=reason, unblinded_on="2026-03-10",
        )
    ]  # fmt: skip
    assert "arm" not in decided[0].model_dump()
    after = evolve(decided[0], state)
    allocation = after.allocation("0101-001")
    assert allocation is not None and allocation.unblinded == tuple(decided)
    assert decide_unblind(after, cmd.UnblindSubject("0101-001", "10 chars.."), "ivan", "investigator", TODAY)
