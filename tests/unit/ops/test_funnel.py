"""Funnel-plot limits: the exact Poisson and binomial quantiles, interpolated (Spiegelhalter 2005); a site at the
study's rate falls outside the 95 % limits at most 5 % of the time whatever its exposure; the funnel narrows."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from trialstack.ops.funnel import (
    BREACH_COVERAGE,
    WARN_COVERAGE,
    binomial_judgement,
    binomial_limits,
    poisson_judgement,
    poisson_limits,
)


def poisson_cdf(mean: float, r: int) -> float:
    return sum(math.exp(k * math.log(mean) - mean - math.lgamma(k + 1)) for k in range(r + 1)) if r >= 0 else 0.0


def test_poisson_limits_at_a_mean_of_ten_are_the_exact_quantiles() -> None:
    # P(X <= 3) = 0.0103 < 0.025 <= P(X <= 4) = 0.0293; P(X <= 16) = 0.9730 < 0.975 <= P(X <= 17) = 0.9857
    limits = poisson_limits(1.0, 10, WARN_COVERAGE)
    assert poisson_cdf(10, 3) < 0.025 <= poisson_cdf(10, 4) and poisson_cdf(10, 16) < 0.975 <= poisson_cdf(10, 17)
    assert (limits.lower, limits.upper) == (0.4, 1.7)
    wider = poisson_limits(1.0, 10, BREACH_COVERAGE)
    assert wider.lower < limits.lower and wider.upper > limits.upper


@settings(max_examples=60, deadline=None)
@given(rate=st.floats(0.05, 5), exposure=st.floats(0.2, 200))
def test_a_site_at_the_study_rate_is_outside_the_95_limits_at_most_5_percent_of_the_time(
    rate: float, exposure: float
) -> None:
    limits = poisson_limits(rate, exposure, WARN_COVERAGE)
    mean = rate * exposure
    below = poisson_cdf(mean, math.ceil(limits.lower * exposure - 1e-9) - 1)
    above = 1 - poisson_cdf(mean, math.floor(limits.upper * exposure + 1e-9))
    assert below <= 0.025 + 1e-9 and above <= 0.025 + 1e-9
    assert limits.lower <= limits.upper


def test_the_funnel_narrows_as_exposure_grows() -> None:
    widths = [(lambda lim: lim.upper - lim.lower)(poisson_limits(2.0, e, WARN_COVERAGE)) for e in (1, 5, 25, 125)]
    assert widths == sorted(widths, reverse=True)
    shares = [binomial_limits(0.25, n, WARN_COVERAGE) for n in (8, 40, 400)]
    assert [s.upper - s.lower for s in shares] == sorted((s.upper - s.lower for s in shares), reverse=True)
    assert all(s.lower <= 0.25 <= s.upper for s in shares)


def test_judgements_say_which_side_and_how_far() -> None:
    assert poisson_judgement(10, 10, 1.0).status == "ok"
    high = poisson_judgement(18, 10, 1.0)
    assert (high.status, high.side) == ("warn", "high") and high.crossed() == high.warn.upper
    assert poisson_judgement(25, 10, 1.0).status == "breach"
    low = poisson_judgement(0, 10, 1.0)
    assert (low.status, low.side) == ("breach", "low") and low.crossed() == low.breach.lower
    assert poisson_judgement(0, 1, 1.0).status == "ok", "no events in 1 unit at rate 1 is nothing unusual"
    assert binomial_judgement(9, 10, 0.2).status == "breach" and binomial_judgement(2, 10, 0.2).status == "ok"
