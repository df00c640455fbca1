"""`trialstack bench irt`: Pocock–Simon minimization on the pure domain, against `random.choice`.

Measured in the same run, on the same subjects (site: 5 levels, age: 2, stage: 3; weights 1, 1, 2; range, p 0.8):
- `decide_randomize` + `evolve` (both events) per randomization with `--subjects` already allocated, the state
  built through `evolve` of `SubjectRandomized` + `TreatmentAllocated` as the handler folds the stream, against
  as many plain `random.choice` allocations (the floor: no consent gate, no HMAC draws, no imbalance arithmetic);
- the same randomizations with a tenth as many already allocated: minimization keeps its counts per factor level
  and arm, so the time per randomization should not grow with the number allocated (a ratio near 1).
No database: the handler's load and append are measured by `bench capture` and `bench ledger`.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

from benchmarks.common import Emit, line
from trialstack.consent.events import ConsentRecordedOnPaper, ConsentView, see
from trialstack.errors import InvalidInput
from trialstack.irt import commands as cmd
from trialstack.irt import events as ev
from trialstack.irt.model import RandomizationState, RevealedLists, SubjectStatus, decide_randomize, evolve
from trialstack.irt.strata import Stratum
from trialstack.protocol.definition import Imbalance, Minimization, Randomization, RandomizationScheme, StudyDefinition
from trialstack.standards.loader import load_study_file

DEMO = Path(__file__).resolve().parent.parent / "studies" / "demo" / "study.yaml"
FACTORS: tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...] = (
    ("SITE", ("0101", "0102", "0103", "0104", "0105"), (35, 25, 20, 12, 8)),
    ("AGE", ("LT65", "GE65"), (70, 30)),
    ("STAGE", ("I", "II", "III"), (50, 30, 20)),
)
TODAY = date(2026, 3, 10)
VERSION = "b" * 64
SEED = bytes(range(32))


def definition() -> StudyDefinition:
    """The demo study randomized by minimization over the three factors (its arms and consent as they are)."""
    demo = load_study_file(DEMO)
    rule = Minimization(
        imbalance=Imbalance.RANGE, probability=Decimal("0.8"), weights={"SITE": 1, "AGE": 1, "STAGE": 2}
    )
    randomization = Randomization(
        scheme=RandomizationScheme.MINIMIZATION, visit="DAY1", ratio={"ZEL": 1, "PBO": 1}, minimization=rule
    )
    return demo.model_copy(update={"randomization": randomization})


def strata(count: int, seed: int) -> list[Stratum]:
    rng = random.Random(seed)
    chosen = [{f: rng.choices(levels, weights)[0] for f, levels, weights in FACTORS} for _ in range(count)]
    return [Stratum("/".join(levels.values()), levels, {}) for levels in chosen]


def allocated_state(count: int) -> RandomizationState:
    """`count` subjects already randomized: their two events each folded with `evolve`, as a stream load does."""
    rng = random.Random(count)
    state = RandomizationState("BENCH")
    for n, stratum in enumerate(strata(count, seed=1)):
        number = str(1001 + n)
        subject = f"P{n:06d}"
        state = evolve(
            ev.SubjectRandomized(
                subject_id=subject, site_id=stratum.levels["SITE"], number=number, stratum=stratum.code,
                factors=stratum.levels, values={}, scheme="minimization", randomized_on=TODAY.isoformat(),
                study_version=VERSION,
            ),
            state,
        )  # fmt: skip
        arm = rng.choice(("ZEL", "PBO"))
        state = evolve(ev.TreatmentAllocated(subject_id=subject, number=number, arm=arm), state)
    return state


def consented() -> ConsentView:
    return see(
        ConsentView(),
        ConsentRecordedOnPaper(
            subject_id="N", site_id="0101", document_id="ICF", version="1.0", language="en", signed_on="2026-03-01",
            obtained_by="cora", obtained_by_name="Cora", choices=[],
        ),
    )  # fmt: skip


def randomize_all(
    state: RandomizationState, definition: StudyDefinition, subjects: list[Stratum], consent: ConsentView
) -> RandomizationState:
    lists = RevealedLists({}, SEED)
    for n, stratum in enumerate(subjects):
        subject_id = f"N{n:06d}"
        decided = decide_randomize(
            state, definition, SubjectStatus(stratum.levels["SITE"], "enrolled"), consent, stratum, lists,
            cmd.RandomizeSubject(subject_id), TODAY, VERSION,
        )  # fmt: skip
        for event in decided:
            state = evolve(event, state)
    return state


def choose_all(subjects: list[Stratum], arms: tuple[str, ...]) -> list[str]:
    rng = random.Random(7)
    return [rng.choice(arms) for _ in subjects]


def best(function: Callable[[], object], repeat: int = 3) -> float:
    """Fastest of `repeat` runs with the garbage collector off, as timeit does: noise only ever adds time."""
    fastest = float("inf")
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            function()
            fastest = min(fastest, time.perf_counter() - start)
    finally:
        if enabled:
            gc.enable()
    return fastest


def run(subjects: int = 10_000, randomizations: int = 2_000, emit: Emit = print) -> None:
    """Print the figures: randomizations/s against random.choice at `subjects` allocated, then the time per
    randomization at `subjects // 10` allocated against `subjects`."""
    if subjects < 10 or randomizations < 1:
        raise InvalidInput("--subjects is at least 10 and --randomizations at least 1", field="subjects")
    study = definition()
    consent = consented()
    timed_subjects = strata(randomizations, seed=2)
    few, many = subjects // 10, subjects
    emit(
        f"irt: minimization (range, p 0.8; site 5 levels, age 2, stage 3; weights 1, 1, 2), {randomizations:,} "
        f"randomizations by decide_randomize + evolve, pure domain, best of 3"
    )
    start = time.perf_counter()
    states = {count: allocated_state(count) for count in (few, many)}
    emit(f"state folded from {2 * (few + many):,} events in {time.perf_counter() - start:.1f} s")

    def timed_from(state: RandomizationState) -> float:
        return best(lambda: randomize_all(state, study, timed_subjects, consent))

    seconds = {count: timed_from(state) for count, state in states.items()}
    baseline = best(lambda: choose_all(timed_subjects, ("ZEL", "PBO")))
    ours = randomizations / seconds[many]
    plain = randomizations / baseline
    emit(line(f"minimization with {many:,} allocated", ours, "randomizations/s"))
    emit(line("random.choice, same subjects", plain, "allocations/s"))
    emit(
        f"ratio minimization / random.choice: {ours / plain:.5f} (random.choice is {plain / ours:,.0f}× faster; "
        f"{1e6 / ours:,.1f} µs vs {1e6 / plain:,.3f} µs per allocation)"
    )
    per_few, per_many = (seconds[count] / randomizations * 1e6 for count in (few, many))
    emit(f"per randomization with {few:,} allocated: {per_few:,.1f} µs")
    emit(f"per randomization with {many:,} allocated: {per_many:,.1f} µs")
    emit(f"ratio {many:,} / {few:,} allocated: {per_many / per_few:.2f}× (1.00: the cost does not grow)")
