"""The allocation schemes: permuted blocks (a list made in advance) and Pocock–Simon minimization. Pure.

Minimization keeps its counts per factor level and arm, so assigning one subject costs factors × arms, whatever
the number already allocated (the `bench irt` benchmark measures it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

from trialstack.irt.draws import Draws
from trialstack.irt.frozen import with_entries
from trialstack.protocol.definition import Imbalance, Minimization


def block(ratio: Mapping[str, int], size: int) -> list[str]:
    """One unshuffled block: each arm `ratio × size / total` times, arms in id order."""
    total = sum(ratio.values())
    if size % total:
        raise ValueError(f"block size {size} is not a multiple of the ratio total {total}")
    return [arm for arm in sorted(ratio) for _ in range(ratio[arm] * size // total)]


def block_list(
    draws: Draws, ratio: Mapping[str, int], block_sizes: Sequence[int], length: int
) -> tuple[list[str], list[int]]:
    """At least `length` entries in whole permuted blocks, each of a size drawn from `block_sizes`; the arms and
    the size of each block, in order."""
    entries: list[str] = []
    sizes: list[int] = []
    options = sorted(set(block_sizes))
    while len(entries) < length:
        size = draws.choice(options)
        sizes.append(size)
        entries += draws.shuffled(block(ratio, size))
    return entries, sizes


def weighted_choice(draws: Draws, arms: Sequence[str], ratio: Mapping[str, int]) -> str:
    """One of `arms`, each as likely as its share of the ratio."""
    ordered = sorted(arms)
    point = draws.below(sum(ratio[arm] for arm in ordered))
    for arm in ordered:
        point -= ratio[arm]
        if point < 0:
            return arm
    raise AssertionError("unreachable: the point lies within the total")


Level = tuple[str, str]
"""(factor id, level code): `("SITE", "0101")`, `("BLSBP", "GE160")`."""


@dataclass(frozen=True)
class MarginCounts:
    """Subjects allocated per factor level and arm: the whole state minimization needs."""

    counts: Mapping[Level, Mapping[str, int]] = field(default_factory=lambda: MappingProxyType({}))

    def of(self, level: Level) -> Mapping[str, int]:
        return self.counts.get(level, MappingProxyType({}))

    def add(self, levels: Mapping[str, str], arm: str) -> MarginCounts:
        """The counts with one more subject on `arm` at each of its levels (only those levels are copied)."""
        added: dict[Level, Mapping[str, int]] = {}
        for factor, code in levels.items():
            current = self.of((factor, code))
            added[(factor, code)] = with_entries(current, {arm: current.get(arm, 0) + 1})
        return MarginCounts(with_entries(self.counts, added))


def level_imbalance(counts: Mapping[str, int], ratio: Mapping[str, int], method: Imbalance) -> Fraction:
    """Imbalance of one level's counts, each divided by its arm's ratio (so 20 vs 10 at 2:1 is balanced)."""
    scaled = [Fraction(counts.get(arm, 0), ratio[arm]) for arm in sorted(ratio)]
    if method is Imbalance.RANGE:
        return max(scaled) - min(scaled)
    mean = sum(scaled, Fraction(0)) / len(scaled)
    return sum(((x - mean) ** 2 for x in scaled), Fraction(0)) / len(scaled)


def imbalance_if(
    margins: MarginCounts, levels: Mapping[str, str], arm: str, ratio: Mapping[str, int], rule: Minimization
) -> Fraction:
    """The weighted total imbalance over the subject's levels if the subject went to `arm`."""
    total = Fraction(0)
    for factor, code in levels.items():
        counts = dict(margins.of((factor, code)))
        counts[arm] = counts.get(arm, 0) + 1
        total += Fraction(rule.weight(factor)) * level_imbalance(counts, ratio, rule.imbalance)
    return total


@dataclass(frozen=True)
class Assignment:
    arm: str
    totals: Mapping[str, Fraction]
    preferred: bool | None
    """True: the least-imbalanced arm was taken; False: another arm by chance; None: every arm tied."""


def minimize(
    margins: MarginCounts, levels: Mapping[str, str], ratio: Mapping[str, int], rule: Minimization, draws: Draws
) -> Assignment:
    """Pocock–Simon: the least-imbalanced arm with the rule's probability (ties at random, by ratio), else another
    arm at random (by ratio). When every arm ties the draw is by ratio alone."""
    totals = {arm: imbalance_if(margins, levels, arm, ratio, rule) for arm in sorted(ratio)}
    least = min(totals.values())
    tied = [arm for arm, total in totals.items() if total == least]
    if len(tied) == len(totals):
        return Assignment(weighted_choice(draws, tied, ratio), totals, None)
    best = weighted_choice(draws, tied, ratio)
    if draws.chance(Fraction(rule.probability)):
        return Assignment(best, totals, True)
    others = [arm for arm in totals if arm != best]
    return Assignment(weighted_choice(draws, others, ratio), totals, False)


def decimal_text(value: Fraction) -> str:
    """A fraction as exact-enough decimal text for an event payload (six places)."""
    if value.denominator == 1:
        return str(value.numerator)
    return str((Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.000001")))
