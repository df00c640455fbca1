"""Funnel-plot control limits: is a site's count consistent with the study's rate, given its exposure? Pure.

A funnel plot puts each site at its exposure (subject-months on study, or subjects whose screening ended) and draws
the limits within which its figure would fall by chance if the site had the study's own rate: Poisson limits for
events per exposure (AEs per 100 subject-months), binomial limits for a proportion (screen failures). The limits are
the exact distribution's quantiles, in whole events: a site is outside the 95 % limits when its count is below the
2.5 % quantile or above the 97.5 % one, so a site at the study's rate is flagged at most 2.5 % of the time on each
side, whatever its exposure. (Spiegelhalter's interpolation between whole events, Statistics in Medicine 24 (2005)
1185-1202, draws smoother lines but flags more often than that at small exposures, where most sites start.) Outside
the 95 % limits a site is a warning; outside the 99.8 % limits a breach.

Floats are fine here: the limits are shown and compared, never hashed; what reaches an event is decimal text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

WARN_COVERAGE = 0.95
BREACH_COVERAGE = 0.998


@dataclass(frozen=True)
class Limits:
    """The rate (or proportion) below `lower` or above `upper` is unlikely by chance at this exposure."""

    lower: float
    upper: float


@dataclass(frozen=True)
class FunnelJudgement:
    """`status` ok, warn (outside `warn` limits) or breach (outside `breach` limits); `side` low or high."""

    status: str
    side: str | None
    warn: Limits
    breach: Limits

    def crossed(self) -> float | None:
        """The limit the figure is beyond (None when it is within the 95 % limits)."""
        limits = self.breach if self.status == "breach" else self.warn
        if self.side is None:
            return None
        return limits.lower if self.side == "low" else limits.upper


def _quantile(cdf: Callable[[int], float], p: float, start: int, stop: int) -> int:
    """The p-quantile of a discrete distribution on start..stop: the least r with P(X <= r) >= p."""
    for r in range(start, stop + 1):
        if cdf(r) >= p:
            return r
    return stop


def _poisson_cdf(mean: float) -> Callable[[int], float]:
    cache: list[float] = []

    def cdf(r: int) -> float:
        while len(cache) <= r:
            k = len(cache)
            term = math.exp(k * math.log(mean) - mean - math.lgamma(k + 1)) if mean > 0 else float(k == 0)
            cache.append((cache[-1] if cache else 0.0) + term)
        return min(cache[r], 1.0)

    return cdf


def _binomial_cdf(n: int, p: float) -> Callable[[int], float]:
    cache: list[float] = []

    def cdf(r: int) -> float:
        while len(cache) <= r:
            k = len(cache)
            if p <= 0 or p >= 1:
                term = float(k == (0 if p <= 0 else n))
            else:
                log_choose = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                term = math.exp(log_choose + k * math.log(p) + (n - k) * math.log1p(-p))
            cache.append((cache[-1] if cache else 0.0) + term)
        return min(cache[r], 1.0)

    return cdf


def poisson_limits(rate: float, exposure: float, coverage: float) -> Limits:
    """Limits of an event rate (events per unit of exposure) at `exposure` units, around the study's `rate`."""
    if exposure <= 0:
        return Limits(0.0, math.inf)
    mean = rate * exposure
    cdf = _poisson_cdf(mean)
    tail = (1 - coverage) / 2
    stop = int(mean + 12 * math.sqrt(mean) + 30)
    return Limits(_quantile(cdf, tail, 0, stop) / exposure, _quantile(cdf, 1 - tail, 0, stop) / exposure)


def binomial_limits(proportion: float, trials: int, coverage: float) -> Limits:
    """Limits of a proportion out of `trials`, around the study's `proportion`."""
    if trials <= 0:
        return Limits(0.0, 1.0)
    cdf = _binomial_cdf(trials, proportion)
    tail = (1 - coverage) / 2
    return Limits(_quantile(cdf, tail, 0, trials) / trials, _quantile(cdf, 1 - tail, 0, trials) / trials)


def judge(observed: float, warn: Limits, breach: Limits) -> FunnelJudgement:
    """Where an observed rate falls: within the 95 % limits (ok), outside them (warn), outside 99.8 % (breach)."""
    side = "low" if observed < warn.lower else "high" if observed > warn.upper else None
    if side is None:
        return FunnelJudgement("ok", None, warn, breach)
    beyond = observed < breach.lower if side == "low" else observed > breach.upper
    return FunnelJudgement("breach" if beyond else "warn", side, warn, breach)


def poisson_judgement(events: int, exposure: float, rate: float) -> FunnelJudgement:
    """A site's `events` in `exposure` units against the study's `rate` per unit."""
    warn = poisson_limits(rate, exposure, WARN_COVERAGE)
    breach = poisson_limits(rate, exposure, BREACH_COVERAGE)
    return judge(events / exposure, warn, breach)


def binomial_judgement(successes: int, trials: int, proportion: float) -> FunnelJudgement:
    warn = binomial_limits(proportion, trials, WARN_COVERAGE)
    breach = binomial_limits(proportion, trials, BREACH_COVERAGE)
    return judge(successes / trials, warn, breach)
