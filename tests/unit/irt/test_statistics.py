"""The statistical quality of the allocation: minimization keeps every factor level balanced, permuted blocks are
balanced at the end of each block and reproducible from the seed, simple randomization and the draws are uniform.

Each test prints the figures it checked (`pytest -s` shows them) and puts them in its assertion messages; each has a
control that the same check rejects, so a broken allocator fails it. Nothing here is timed.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialstack.consent.events import ConsentView
from trialstack.irt import commands as cmd
from trialstack.irt.draws import Draws
from trialstack.irt.model import RandomizationState, RevealedLists, SubjectStatus, decide_randomize, evolve
from trialstack.irt.model import generate_list as seal_list
from trialstack.irt.schemes import block_list, weighted_choice
from trialstack.irt.strata import Stratum
from trialstack.protocol.definition import (
    Imbalance,
    Minimization,
    Randomization,
    RandomizationScheme,
    StudyDefinition,
)
from trialstack.standards.loader import load_study_file

DEMO = Path(__file__).resolve().parents[3] / "studies" / "demo" / "study.yaml"
TODAY = date(2026, 3, 10)


@pytest.fixture(scope="module")
def demo() -> StudyDefinition:
    return load_study_file(DEMO)


def report(*lines: str) -> str:
    text = "\n".join(lines)
    print(f"\n{text}")
    return text


# --- chi-square --------------------------------------------------------------------------------------------------

CRITICAL_99 = {1: 6.635, 2: 9.210, 5: 15.086}
"""Upper 1% points of the chi-square distribution by degrees of freedom, from the table of the NIST/SEMATECH
e-Handbook of Statistical Methods, §1.3.6.7.4 ("Critical Values of the Chi-Square Distribution"); scipy is not a
dependency of the project. `chi2_sf` below recomputes them in closed form, so a mistyped value fails the test."""


def chi2_sf(x: float, df: int) -> float:
    """P(X ≥ x) for X ~ chi-square with an integer `df`, in closed form (Abramowitz & Stegun 26.4.4-5)."""
    half = x / 2
    if df % 2 == 0:
        return math.exp(-half) * math.fsum(half**i / math.factorial(i) for i in range(df // 2))
    terms = [half ** (i - 0.5) / math.gamma(i + 0.5) for i in range(1, (df + 1) // 2)]
    return math.erfc(math.sqrt(half)) + math.exp(-half) * math.fsum(terms)


def chi_square(observed: Mapping[str, int], expected_share: Mapping[str, float]) -> float:
    total = sum(observed.values())
    return sum((observed.get(k, 0) - total * p) ** 2 / (total * p) for k, p in expected_share.items())


def test_the_critical_values_are_the_upper_one_percent_points() -> None:
    for df, critical in CRITICAL_99.items():
        assert chi2_sf(critical, df) == pytest.approx(0.01, abs=2e-5), (df, chi2_sf(critical, df))
    assert chi2_sf(0.0, 3) == pytest.approx(1.0) and chi2_sf(7.815, 3) == pytest.approx(0.05, abs=1e-4)


def shares(ratio: Mapping[str, int]) -> dict[str, float]:
    total = sum(ratio.values())
    return {arm: n / total for arm, n in ratio.items()}


@pytest.mark.parametrize("ratio", [{"ZEL": 1, "PBO": 1}, {"HIGH": 2, "LOW": 1, "PBO": 1}], ids=["1:1", "2:1:1"])
def test_simple_randomization_allocates_by_ratio_and_a_biased_allocator_is_rejected(ratio: dict[str, int]) -> None:
    n, df = 3_000, len(ratio) - 1
    arms = sorted(ratio)
    draws = Draws(b"simple randomization test seed!!", "simple")
    ours = Counter(weighted_choice(draws, arms, ratio) for _ in range(n))
    statistic = chi_square(ours, shares(ratio))
    # the control: an allocator that gives the first arm 60% where the ratio gives it 50%, the rest shared evenly
    favoured = max(arms, key=lambda arm: ratio[arm])
    biased = {arm: 0.6 if arm == favoured else 0.4 / (len(arms) - 1) for arm in arms}
    rng = random.Random(2026)
    control = Counter(rng.choices(arms, weights=[biased[a] for a in arms])[0] for _ in range(n))
    control_statistic = chi_square(control, shares(ratio))
    text = report(
        f"simple randomization {':'.join(str(ratio[a]) for a in arms)} ({', '.join(arms)}), n = {n:,}: "
        f"{dict(sorted(ours.items()))}, chi-square {statistic:.3f} (df {df}, p = {chi2_sf(statistic, df):.3f}); "
        f"reject above {CRITICAL_99[df]} at alpha 0.01",
        f"control allocator favouring {favoured} at 60%: {dict(sorted(control.items()))}, chi-square "
        f"{control_statistic:.1f} (p = {chi2_sf(control_statistic, df):.2e})",
    )
    assert statistic < CRITICAL_99[df], text
    assert control_statistic > CRITICAL_99[df], text


def test_draws_below_n_are_uniform_and_a_modulo_biased_source_is_rejected() -> None:
    n, count = 6, 12_000
    draws = Draws(b"uniformity of below(n), a test..", "below")
    values = Counter(str(draws.below(n)) for _ in range(count))
    expected = {str(v): 1 / n for v in range(n)}
    statistic = chi_square(values, expected)
    # the control: the modulo bias `below` rejects draws to avoid, made visible (40 = 6·6 + 4: 0-3 come 7 times
    # in 40, 4 and 5 only 6 times)
    rng = random.Random(6)
    biased = Counter(str(rng.randrange(40) % n) for _ in range(count))
    control_statistic = chi_square(biased, expected)
    text = report(
        f"Draws.below({n}) × {count:,}: {dict(sorted(values.items()))}, chi-square {statistic:.3f} (df {n - 1}, "
        f"p = {chi2_sf(statistic, n - 1):.3f}); reject above {CRITICAL_99[n - 1]}",
        f"control randrange(40) % 6: {dict(sorted(biased.items()))}, chi-square {control_statistic:.1f}",
    )
    assert statistic < CRITICAL_99[n - 1], text
    assert control_statistic > CRITICAL_99[n - 1], text


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=16, max_size=40), st.lists(st.integers(), max_size=40))
def test_shuffled_is_a_permutation_and_the_same_seed_shuffles_the_same_way(seed: bytes, items: list[int]) -> None:
    shuffled = Draws(seed, "shuffle").shuffled(items)
    assert sorted(shuffled) == sorted(items)
    assert Draws(seed, "shuffle").shuffled(items) == shuffled


def test_a_seed_shorter_than_16_bytes_is_refused_and_bounds_are_positive() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Draws(b"x" * 15, "short")
    draws = Draws(b"x" * 16, "sixteen")
    assert 0 <= draws.below(10) < 10
    with pytest.raises(ValueError, match="positive bound"):
        draws.below(0)
    assert Draws(b"x" * 16, "a").below(2**40) != Draws(b"x" * 16, "b").below(2**40)  # the purpose separates streams


# --- permuted blocks ---------------------------------------------------------------------------------------------

ARM_IDS = ("ZEL", "PBO", "LOW")


@st.composite
def block_designs(draw: st.DrawFn) -> tuple[dict[str, int], tuple[int, ...]]:
    arms = draw(st.integers(min_value=1, max_value=3))
    ratio = {arm: draw(st.integers(min_value=1, max_value=3)) for arm in ARM_IDS[:arms]}
    total = sum(ratio.values())
    multiples = draw(st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=3))
    return ratio, tuple(total * m for m in multiples)


def blocks(entries: Sequence[str], sizes: Sequence[int]) -> list[Sequence[str]]:
    cut: list[Sequence[str]] = []
    start = 0
    for size in sizes:
        cut.append(entries[start : start + size])
        start += size
    return cut


def assert_balanced_blocks(entries: Sequence[str], sizes: Sequence[int], ratio: Mapping[str, int]) -> None:
    total = sum(ratio.values())
    assert sum(sizes) == len(entries)
    for n, piece in enumerate(blocks(entries, sizes)):
        wanted = {arm: share * len(piece) // total for arm, share in ratio.items()}
        assert Counter(piece) == wanted, f"block {n + 1} of size {len(piece)}: {Counter(piece)} ≠ {wanted}"


@settings(max_examples=80, deadline=None)
@given(block_designs(), st.integers(min_value=1, max_value=120), st.binary(min_size=16, max_size=32))
def test_every_complete_block_is_balanced_in_the_ratio_and_the_seed_reproduces_the_list(
    design: tuple[dict[str, int], tuple[int, ...]], length: int, seed: bytes
) -> None:
    ratio, sizes = design
    entries, used = block_list(Draws(seed, "L1:0101/LT160"), ratio, sizes, length)
    assert length <= len(entries) < length + max(sizes)
    assert set(used) <= set(sizes)
    assert_balanced_blocks(entries, used, ratio)
    assert block_list(Draws(seed, "L1:0101/LT160"), ratio, sizes, length) == (entries, used)


@settings(max_examples=40, deadline=None)
@given(
    block_designs(),
    st.lists(st.sampled_from(["0101/LT160", "0101/GE160", "0102/LT160", "0102/GE160"]), min_size=1, unique=True),
    st.integers(min_value=1, max_value=60),
    st.binary(min_size=16, max_size=32),
)
def test_a_generated_list_is_balanced_per_stratum_and_its_checksum_is_the_seeds(
    design: tuple[dict[str, int], tuple[int, ...]], strata: list[str], size: int, seed: bytes
) -> None:
    ratio, sizes = design
    randomization = Randomization(visit="DAY1", ratio=ratio, block_sizes=sizes, list_size=size)
    sealed = seal_list(RandomizationState("S"), randomization, strata, seed, "h")
    document = orjson.loads(sealed.content)
    assert sorted(document["strata"]) == sorted(strata) == sorted(sealed.event.strata)
    for stratum, listed in document["strata"].items():
        assert sealed.event.strata[stratum] == len(listed["arms"]) >= size
        assert_balanced_blocks(listed["arms"], listed["blocks"], ratio)
    again = seal_list(RandomizationState("S"), randomization, strata, seed, "h")
    assert again.content == sealed.content and again.event.checksum == sealed.event.checksum


def test_a_different_seed_gives_a_different_list_and_checksum() -> None:
    randomization = Randomization(visit="DAY1", ratio={"ZEL": 1, "PBO": 1}, block_sizes=(4, 6), list_size=60)
    strata = ["0101/LT160", "0101/GE160"]
    one = seal_list(RandomizationState("S"), randomization, strata, b"a" * 32, "h")
    other = seal_list(RandomizationState("S"), randomization, strata, b"b" * 32, "h")
    assert one.event.checksum != other.event.checksum
    for stratum in strata:
        first, second = (orjson.loads(s.content)["strata"][stratum]["arms"] for s in (one, other))
        assert first != second, stratum
    # strata are drawn apart: the same seed gives each stratum its own sequence
    document = orjson.loads(one.content)["strata"]
    assert document["0101/LT160"]["arms"] != document["0101/GE160"]["arms"]


# --- minimization ------------------------------------------------------------------------------------------------

SUBJECTS = 1_000
PROBABILITY = Decimal("0.8")
FACTORS: tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...] = (
    ("SITE", ("0101", "0102", "0103", "0104", "0105"), (35, 25, 20, 12, 8)),
    ("AGE", ("LT65", "GE65"), (70, 30)),
    ("STAGE", ("I", "II", "III"), (50, 30, 20)),
)
WEIGHTS = {"SITE": 1, "AGE": 1, "STAGE": 2}
LEVELS = sum(len(levels) for _, levels, _ in FACTORS)
ALPHA = 1e-4
SEEDS = (1, 2, 3, 4)


def bound(toward_balance: float, alpha: float = ALPHA) -> int:
    """The smallest k with N·L·((1-q)/q)^k ≤ alpha: the imbalance no level should reach (see the test below)."""
    odds = (1 - toward_balance) / toward_balance
    return math.ceil(math.log(alpha / (SUBJECTS * LEVELS)) / math.log(odds))


VARIANCE_BOUND = bound(float(PROBABILITY))  # 14
RANGE_BOUND = bound(0.75 * float(PROBABILITY) + 0.25 * (1 - float(PROBABILITY)))  # q = 0.65: 30


def cohort(seed: int) -> list[dict[str, str]]:
    """The subjects' factor levels, drawn with unequal frequencies (a big site and a small one, 70% under 65...)."""
    rng = random.Random(seed)
    return [{f: rng.choices(levels, weights)[0] for f, levels, weights in FACTORS} for _ in range(SUBJECTS)]


def scaled_range(counts: Mapping[str, int], ratio: Mapping[str, int]) -> Fraction:
    scaled = [Fraction(counts.get(arm, 0), share) for arm, share in ratio.items()]
    return max(scaled) - min(scaled)


@dataclass(frozen=True)
class Run:
    worst: Fraction
    """The largest imbalance any level reached at any point of accrual (counts divided by the ratio)."""
    level: tuple[str, str]
    arms: Counter[str]

    def __str__(self) -> str:
        return f"{float(self.worst):g} ({self.level[0]}={self.level[1]})"


def track(
    subjects: list[dict[str, str]], ratio: Mapping[str, int], allocate: Callable[[int, dict[str, str]], str]
) -> Run:
    counts: dict[tuple[str, str], Counter[str]] = {}
    worst, where = Fraction(0), ("", "")
    arms: Counter[str] = Counter()
    for n, levels in enumerate(subjects):
        arm = allocate(n, levels)
        arms[arm] += 1
        for level in levels.items():
            counts.setdefault(level, Counter())[arm] += 1
            imbalance = scaled_range(counts[level], ratio)
            if imbalance > worst:
                worst, where = imbalance, level
    return Run(worst, where, arms)


def minimized(demo: StudyDefinition, ratio: dict[str, int], method: Imbalance, seed: int) -> Run:
    """1,000 subjects randomized the way the handler does it: `decide_randomize` on the folded state, then `evolve`."""
    rule = Minimization(imbalance=method, probability=PROBABILITY, weights=WEIGHTS)
    randomization = Randomization(scheme=RandomizationScheme.MINIMIZATION, visit="DAY1", ratio=ratio, minimization=rule)
    definition = demo.model_copy(update={"randomization": randomization, "consent": ()})
    lists = RevealedLists({}, seed.to_bytes(2, "big") * 16)
    state = RandomizationState("SIM")

    def allocate(n: int, levels: dict[str, str]) -> str:
        nonlocal state
        subject_id = f"S{n:04d}"
        stratum = Stratum("/".join(levels.values()), levels, {})
        decided = decide_randomize(
            state, definition, SubjectStatus(levels["SITE"], "enrolled"), ConsentView(), stratum, lists,
            cmd.RandomizeSubject(subject_id), TODAY, "h",
        )  # fmt: skip
        for event in decided:
            state = evolve(event, state)
        allocation = state.allocation(subject_id)
        assert allocation is not None and allocation.arm is not None
        return allocation.arm

    run = track(cohort(seed), ratio, allocate)
    for factor, levels, _ in FACTORS:  # the state's own margins agree with what was tracked
        for level in levels:
            assert sum(state.margins.of((factor, level)).values()) == sum(
                1 for subject in cohort(seed) if subject[factor] == level
            )
    return run


def simple(ratio: dict[str, int], seed: int) -> Run:
    """The control: the same subjects allocated by `random.choice` over the arms repeated by the ratio."""
    rng = random.Random(seed + 1_000_003)
    urn = [arm for arm in sorted(ratio) for _ in range(ratio[arm])]
    return track(cohort(seed), ratio, lambda _n, _levels: rng.choice(urn))


def test_minimization_keeps_every_factor_level_balanced_where_simple_randomization_does_not(
    demo: StudyDefinition,
) -> None:
    """Pocock–Simon with p = 0.8 over 1,000 subjects, 3 factors (site: 5 levels, weight 1; age: 2 levels, weight 1;
    stage: 3 levels, weight 2) with unequal level frequencies, 1:1: no level's imbalance |n_ZEL - n_PBO| ever
    reaches 14 with the `variance` measure, nor 30 with `range`.

    The bound. Seen from one level, every subject who has it moves the level's difference D one step; when D ≠ 0
    the step goes toward balance with some probability q. That is Efron's biased coin, whose stationary law has
    P(|D| = k) ∝ r^k with r = (1-q)/q; summing over the N = 1,000 subjects' steps in each of the L = 10 levels,
    P(some level reaches k at some point) ≲ N·L·r^k. The bound is the smallest k that makes this ≤ alpha = 1e-4:
    - `variance`: with two arms the preferred arm is the one that lowers Σ w·D over the subject's levels, so a
      level whose imbalance grows outweighs the others and its walk becomes the biased coin with q = p = 0.8:
      r = 1/4, k = 14 (10^4 · 4^-14 = 3.7e-5).
    - `range`: a level contributes only the sign of D (|D+1| - |D-1| = ±2), however large D is, so it is outvoted
      whenever the subject's other levels lean the other way with more weight; if their signs are independent
      and even that is about a quarter of the time: q ≈ ¾·0.8 + ¼·0.2 = 0.65, r = 0.54, k = 30. (Simulated,
      the weight-1 factors step toward balance 0.61-0.68 of the time, more as D grows; the weight-2 one 0.77.)
    Calibrated on 200 simulated trials (seeds 100-299) before this test was written: the worst level reached
    at most 11 with `variance` and 22 with `range` (14 or less in 196 of 200), while simple randomization of the
    same subjects reached 18 to 89 (median 37). Simple randomization is the control: its worst level must exceed
    the `variance` bound in every run here, and the `range` bound in at least one, or the bound proves nothing.
    """
    ratio = {"ZEL": 1, "PBO": 1}
    lines = [f"minimization 1:1, {SUBJECTS:,} subjects, p = {PROBABILITY}, weights {WEIGHTS}, "
             f"bounds: variance {VARIANCE_BOUND}, range {RANGE_BOUND} (alpha {ALPHA:g})"]  # fmt: skip
    variance = {seed: minimized(demo, ratio, Imbalance.VARIANCE, seed) for seed in SEEDS}
    ranged = {seed: minimized(demo, ratio, Imbalance.RANGE, seed) for seed in SEEDS}
    control = {seed: simple(ratio, seed) for seed in SEEDS}
    for seed in SEEDS:
        lines.append(
            f"  seed {seed}: worst level imbalance variance {variance[seed]}, range {ranged[seed]}, "
            f"simple randomization {control[seed]}; arms {dict(variance[seed].arms)}"
        )
    text = report(*lines)
    assert (VARIANCE_BOUND, RANGE_BOUND) == (14, 30), text
    assert all(run.worst < VARIANCE_BOUND for run in variance.values()), text
    assert all(run.worst < RANGE_BOUND for run in ranged.values()), text
    assert all(run.worst >= VARIANCE_BOUND for run in control.values()), text
    assert max(run.worst for run in control.values()) >= RANGE_BOUND, text


def test_minimization_at_two_to_one_balances_the_counts_divided_by_the_ratio(demo: StudyDefinition) -> None:
    """The same design at ZEL:PBO = 2:1: each level's imbalance is measured on n_ZEL/2 - n_PBO, the counts divided
    by the ratio (so 20 vs 10 is balance), and stays under the same bounds (14 with `variance`, 30 with `range`).
    A step is now +1/2 or -1, so the 1:1 derivation holds in these units; calibrated on 200 trials the worst level
    reached 13 with `variance` and 18.5 with `range`, simple randomization 13 to 70 (median 25.5). The control must
    exceed the `variance` bound in every run here; simple randomization drifts less at 2:1 (its steps are smaller),
    so the `range` bound of 30 is printed against it but not required of it."""
    ratio = {"ZEL": 2, "PBO": 1}
    variance = {seed: minimized(demo, ratio, Imbalance.VARIANCE, seed) for seed in SEEDS}
    ranged = {seed: minimized(demo, ratio, Imbalance.RANGE, seed) for seed in SEEDS}
    control = {seed: simple(ratio, seed) for seed in SEEDS}
    lines = [f"minimization 2:1 (ZEL:PBO), {SUBJECTS:,} subjects, p = {PROBABILITY}, bounds on n_ZEL/2 - n_PBO: "
             f"variance {VARIANCE_BOUND}, range {RANGE_BOUND}"]  # fmt: skip
    for seed in SEEDS:
        share = variance[seed].arms["ZEL"] / SUBJECTS
        lines.append(
            f"  seed {seed}: worst level imbalance variance {variance[seed]}, range {ranged[seed]}, "
            f"simple randomization {control[seed]}; ZEL share {share:.3f}"
        )
    text = report(*lines)
    assert all(run.worst < VARIANCE_BOUND for run in variance.values()), text
    assert all(run.worst < RANGE_BOUND for run in ranged.values()), text
    assert all(run.worst >= VARIANCE_BOUND for run in control.values()), text
    for run in variance.values():  # overall, the sum of AGE's two levels: within twice the bound
        assert abs(Fraction(run.arms["ZEL"], 2) - run.arms["PBO"]) < 2 * VARIANCE_BOUND, text
