"""The KRIs: what each measures, and each figure computed from a site's facts, as of a day. Pure.

`SiteFacts` are the tallies of one site (or of several, `combine`d) read from ops' read model; `figures` turns them
into one `Figure` per KRI and site plus the study-wide ones, each judged by the study's threshold or, for AE and
SAE rates, by the funnel plot against the whole study's rate (`ops.funnel`).
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from types import MappingProxyType
from typing import Any

from trialstack.ops import funnel
from trialstack.ops.events import STUDY_WIDE
from trialstack.protocol.definition_kris import FUNNEL_KRIS, AppliesTo, Direction, EnrolmentPlan, KriId, Kris

DAYS_PER_MONTH = Decimal("30.4375")
"""A subject-month: 365.25 / 12 days."""
AGE_BANDS = (("0-7", 0, 7), ("8-14", 8, 14), ("15-30", 15, 30), (">30", 31, None))
STATUSES = ("none", "ok", "warn", "breach")
NOT_AVAILABLE = (
    ("PROTOCOL_DEVIATIONS", "Protocol deviations per site", "not available until ops/safety land"),
    ("SAFETY_CLOCKS", "SAE reporting clocks met", "not available until ops/safety land"),
)
"""KRIs a risk-based monitoring plan expects whose source events no context records yet."""


@dataclass(frozen=True)
class KriInfo:
    kri: KriId
    label: str
    unit: str
    direction: Direction
    """Which way is worse (what the funnel flags both ways shows only the natural concern)."""
    measures: str
    views: frozenset[str]
    """The dashboards that show it: sponsor, monitor, data_manager."""

    @property
    def method(self) -> str:
        return "funnel" if self.kri in FUNNEL_KRIS else "threshold"


def _info(kri: KriId, label: str, unit: str, direction: Direction, measures: str, views: str) -> KriInfo:
    return KriInfo(kri, label, unit, direction, measures, frozenset(views.split()))


_UP, _DOWN = Direction.ABOVE, Direction.BELOW
CATALOGUE: Mapping[KriId, KriInfo] = MappingProxyType({info.kri: info for info in (
    _info(KriId.ENROLMENT_VS_PLAN, "Enrolment against plan", "% of plan", _DOWN,
          "subjects enrolled as a share of those planned by this day (pro-rated within the month; from one planned)",
          "sponsor monitor"),
    _info(KriId.SCREEN_FAILURE_RATE, "Screen failure rate", "%", _UP,
          "screen failures among subjects whose screening ended (enrolled or failed)", "sponsor monitor"),
    _info(KriId.OPEN_QUERIES, "Open queries", "queries", _UP,
          "queries not yet closed or cancelled, by age since opened: 0-7, 8-14, 15-30, >30 days",
          "monitor data_manager"),
    _info(KriId.QUERY_AGE_OVER_30, "Queries open over 30 days", "queries", _UP,
          "open queries opened more than 30 days ago", "monitor data_manager"),
    _info(KriId.QUERY_TURNAROUND, "Query turnaround", "days", _UP,
          "mean days from opening to closing, of the queries closed", "data_manager"),
    _info(KriId.DATA_ENTRY_LAG, "Time from visit to data entry", "days", _UP,
          "mean days from a visit to the first entry of each of its forms", "monitor data_manager"),
    _info(KriId.MISSING_PAGES, "Missing pages", "forms", _UP,
          "forms expected at visits that took place over 7 days ago and never entered", "monitor data_manager"),
    _info(KriId.SDV_BACKLOG, "SDV backlog", "forms", _UP,
          "entered forms with items to verify whose source data verification is not complete", "monitor"),
    _info(KriId.VISITS_OUT_OF_WINDOW, "Visits out of window", "% of visits", _UP,
          "dated visits with a window whose date is outside it (capture's window check)", "sponsor monitor"),
    _info(KriId.EDIT_CHECK_FAILURES, "Edit-check failures", "per 100 forms", _UP,
          "edit checks failed (window checks aside) per 100 forms entered", "data_manager"),
    _info(KriId.EPRO_COMPLIANCE, "ePRO diary compliance", "%", _DOWN,
          "diary entries completed among those whose window closed", "sponsor monitor"),
    _info(KriId.AE_RATE, "Adverse events", "per 100 subject-months", _DOWN,
          "adverse events recorded per 100 subject-months on study; funnel plot against the study's rate",
          "sponsor monitor"),
    _info(KriId.SAE_RATE, "Serious adverse events", "per 100 subject-months", _UP,
          "serious adverse events per 100 subject-months on study; funnel plot against the study's rate",
          "sponsor monitor"),
    _info(KriId.KITS_QUARANTINED, "Kits in quarantine", "kits", _UP,
          "kits shipped to the site held in quarantine (e.g. a temperature excursion)", "sponsor monitor"),
    _info(KriId.DISPENSING_MISSED, "Dispensing visits without a kit", "visits", _UP,
          "dispensing visits of randomized subjects, over a day old, where no kit was dispensed", "monitor"),
)})  # fmt: skip


@dataclass(frozen=True)
class SiteFacts:
    """One site's tallies (or several sites' combined) from ops' read model, as of a day."""

    site_id: str
    screened: int = 0
    enrolled: int = 0
    screen_failed: int = 0
    enrolled_by_month: Mapping[str, int] = field(default_factory=dict)
    subject_days: int = 0
    open_query_ages: tuple[int, ...] = ()
    closed_queries: int = 0
    close_days: int = 0
    lag_forms: int = 0
    lag_days: int = 0
    expected_pages: int = 0
    entered_pages: int = 0
    sdv_backlog: int = 0
    windowed_visits: int = 0
    out_of_window: int = 0
    forms_entered: int = 0
    check_failures: int = 0
    epro_done: int = 0
    epro_missed: int = 0
    aes: int = 0
    saes: int = 0
    kits_quarantined: int = 0
    dispensing_due: int = 0
    dispensing_missed: int = 0


def combine(site_id: str, parts: Iterable[SiteFacts]) -> SiteFacts:
    """Several sites' facts as one (the study-wide figure is computed from these, never averaged)."""
    values: dict[str, Any] = {"site_id": site_id}
    months: Counter[str] = Counter()
    ages: list[int] = []
    for part in parts:
        months.update(part.enrolled_by_month)
        ages.extend(part.open_query_ages)
        for name in (f.name for f in fields(SiteFacts)):
            if name not in ("site_id", "enrolled_by_month", "open_query_ages"):
                values[name] = values.get(name, 0) + getattr(part, name)
    return SiteFacts(**values, enrolled_by_month=dict(sorted(months.items())), open_query_ages=tuple(sorted(ages)))


@dataclass(frozen=True)
class Figure:
    """One KRI at one site (or study-wide, `site_id` "*"): its value, status and the level that decided it."""

    kri: KriId
    site_id: str
    value: Decimal | None
    numerator: int | None
    denominator: Decimal | None
    status: str = "none"
    threshold: Decimal | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


def rounded(value: Decimal, places: int = 1) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def _ratio(numerator: int, denominator: Decimal | int, scale: int = 100) -> Decimal | None:
    return rounded(Decimal(numerator) * scale / Decimal(denominator)) if denominator else None


def _rate(events: int, months: Decimal) -> Decimal | None:
    """Events per 100 subject-months."""
    return rounded(Decimal(events) * 100 / months, 2) if months else None


def _mean(total: int, count: int) -> Decimal | None:
    return rounded(Decimal(total) / count) if count else None


def months_between(start: str, day: date) -> int:
    """Whole months from the first of `start` (YYYY-MM) to the first of `day`'s month."""
    year, month = (int(part) for part in start.split("-"))
    return (day.year - year) * 12 + day.month - month


def planned_by(plan: EnrolmentPlan, day: date) -> Decimal:
    """Subjects the plan expects enrolled by the end of `day`: pro-rated within the month, at most the target."""
    months = months_between(plan.start, day)
    if months < 0:
        return Decimal(0)
    share = Decimal(months) + Decimal(day.day) / calendar.monthrange(day.year, day.month)[1]
    return rounded(min(Decimal(plan.target), plan.per_month * share))


def age_bands(ages: Sequence[int]) -> dict[str, int]:
    return {name: sum(low <= age and (high is None or age <= high) for age in ages) for name, low, high in AGE_BANDS}


def subject_months(facts: SiteFacts) -> Decimal:
    return Decimal(facts.subject_days) / DAYS_PER_MONTH


def _values(facts: SiteFacts, plans: Sequence[EnrolmentPlan], as_of: date) -> dict[KriId, Figure]:
    """Every KRI of one site's (or the combined) facts, not yet judged."""
    site = facts.site_id
    planned = sum((planned_by(plan, as_of) for plan in plans), Decimal(0)) if plans else None
    against_plan = _ratio(facts.enrolled, planned) if planned is not None and planned >= 1 else None
    decided = facts.enrolled + facts.screen_failed
    months = subject_months(facts)
    over_30 = sum(age > 30 for age in facts.open_query_ages)
    missing = facts.expected_pages - facts.entered_pages
    diary = facts.epro_done + facts.epro_missed

    def make(kri: KriId, value: Decimal | None, num: int | None, den: Decimal | int | None, **detail: Any) -> Figure:
        return Figure(kri, site, value, num, Decimal(den) if den is not None else None, detail=detail)

    return {figure.kri: figure for figure in (
        make(KriId.ENROLMENT_VS_PLAN, against_plan, facts.enrolled, planned,
             screened=facts.screened),
        make(KriId.SCREEN_FAILURE_RATE, _ratio(facts.screen_failed, decided), facts.screen_failed, decided),
        make(KriId.OPEN_QUERIES, Decimal(len(facts.open_query_ages)), len(facts.open_query_ages), None,
             bands=age_bands(facts.open_query_ages)),
        make(KriId.QUERY_AGE_OVER_30, Decimal(over_30), over_30, None),
        make(KriId.QUERY_TURNAROUND, _mean(facts.close_days, facts.closed_queries), facts.close_days,
             facts.closed_queries),
        make(KriId.DATA_ENTRY_LAG, _mean(facts.lag_days, facts.lag_forms), facts.lag_days, facts.lag_forms),
        make(KriId.MISSING_PAGES, Decimal(missing), missing, facts.expected_pages),
        make(KriId.SDV_BACKLOG, Decimal(facts.sdv_backlog), facts.sdv_backlog, None),
        make(KriId.VISITS_OUT_OF_WINDOW, _ratio(facts.out_of_window, facts.windowed_visits), facts.out_of_window,
             facts.windowed_visits),
        make(KriId.EDIT_CHECK_FAILURES, _ratio(facts.check_failures, facts.forms_entered), facts.check_failures,
             facts.forms_entered),
        make(KriId.EPRO_COMPLIANCE, _ratio(facts.epro_done, diary), facts.epro_done, diary),
        make(KriId.AE_RATE, _rate(facts.aes, months), facts.aes, rounded(months, 2)),
        make(KriId.SAE_RATE, _rate(facts.saes, months), facts.saes, rounded(months, 2)),
        make(KriId.KITS_QUARANTINED, Decimal(facts.kits_quarantined), facts.kits_quarantined, None),
        make(KriId.DISPENSING_MISSED, Decimal(facts.dispensing_missed), facts.dispensing_missed,
             facts.dispensing_due),
    )}  # fmt: skip


def judge_threshold(figure: Figure, kris: Kris | None, study_wide: bool) -> Figure:
    """The figure's status by the study's threshold: `none` without one (or without a value)."""
    threshold = kris.threshold(figure.kri) if kris is not None else None
    level = AppliesTo.STUDY if study_wide else AppliesTo.SITE
    if threshold is None or threshold.applies_to not in (level, AppliesTo.BOTH) or figure.value is None:
        return figure
    value = figure.value

    def reached(limit: Decimal | int) -> bool:
        return value >= limit if threshold.direction is Direction.ABOVE else value <= limit

    if threshold.breach is not None and reached(threshold.breach):
        return _judged(figure, "breach", Decimal(threshold.breach))
    if threshold.warn is not None and reached(threshold.warn):
        return _judged(figure, "warn", Decimal(threshold.warn))
    return _judged(figure, "ok", Decimal(threshold.warn if threshold.warn is not None else threshold.breach or 0))


def _judged(figure: Figure, status: str, threshold: Decimal | None, **detail: Any) -> Figure:
    return Figure(figure.kri, figure.site_id, figure.value, figure.numerator, figure.denominator, status, threshold,
                  {**figure.detail, **detail})  # fmt: skip


def _limits_text(limits: funnel.Limits, scale: float, places: int) -> dict[str, str | None]:
    upper = None if limits.upper == float("inf") else f"{limits.upper * scale:.{places}f}"
    return {"lower": f"{limits.lower * scale:.{places}f}", "upper": upper}


def judge_funnel(figure: Figure, events: int, exposure: Decimal, study_rate: float) -> Figure:
    """AE and SAE rates: the site's rate against the funnel plot's limits around the study's rate."""
    if exposure <= 0 or figure.value is None:
        return figure
    units = float(exposure / 100)
    verdict = funnel.poisson_judgement(events, units, study_rate)
    crossed = verdict.crossed()
    detail = {
        "funnel": {"centre": f"{study_rate:.2f}", "side": verdict.side, "warn": _limits_text(verdict.warn, 1, 2),
                   "breach": _limits_text(verdict.breach, 1, 2)},
    }  # fmt: skip
    threshold = rounded(Decimal(repr(crossed)), 2) if crossed is not None else None
    return _judged(figure, verdict.status, threshold, **detail)


def _screen_failure_funnel(figure: Figure, facts: SiteFacts, proportion: float) -> Figure:
    """The screen-failure rate on a binomial funnel (shown beside its threshold status, not deciding it)."""
    decided = facts.enrolled + facts.screen_failed
    if not decided:
        return figure
    verdict = funnel.binomial_judgement(facts.screen_failed, decided, proportion)
    detail = {"centre": f"{proportion * 100:.1f}", "side": verdict.side, "flag": verdict.status,
              "warn": _limits_text(verdict.warn, 100, 1), "breach": _limits_text(verdict.breach, 100, 1)}  # fmt: skip
    return _judged(figure, figure.status, figure.threshold, funnel=detail)


def figures(
    sites: Sequence[SiteFacts], kris: Kris | None, as_of: date, reference: SiteFacts | None = None
) -> list[Figure]:
    """Every KRI of every site in `sites`, then study-wide over them (site "*"), judged.

    `reference`: the whole study's facts, whose rates are the centre of the funnel plots (default: `sites`
    combined); a user who sees some sites only is shown their sites against the whole study.
    """
    plans = {plan.site: plan for plan in kris.enrolment_plan} if kris is not None else {}
    whole = reference if reference is not None else combine(STUDY_WIDE, sites)
    months = subject_months(whole)
    decided = whole.enrolled + whole.screen_failed
    rates = {
        KriId.AE_RATE: float(whole.aes / (months / 100)) if months else 0.0,
        KriId.SAE_RATE: float(whole.saes / (months / 100)) if months else 0.0,
    }
    proportion = whole.screen_failed / decided if decided else 0.0
    found: list[Figure] = []
    for facts in sites:
        own = [plans[facts.site_id]] if facts.site_id in plans else []
        for kri, figure in _values(facts, own, as_of).items():
            if kri in FUNNEL_KRIS:
                events = facts.aes if kri is KriId.AE_RATE else facts.saes
                found.append(judge_funnel(figure, events, subject_months(facts), rates[kri]))
            elif kri is KriId.SCREEN_FAILURE_RATE:
                found.append(_screen_failure_funnel(judge_threshold(figure, kris, False), facts, proportion))
            else:
                found.append(judge_threshold(figure, kris, False))
    overall = combine(STUDY_WIDE, sites)
    planned = [plans[facts.site_id] for facts in sites if facts.site_id in plans]
    for kri, figure in _values(overall, planned, as_of).items():
        found.append(figure if kri in FUNNEL_KRIS else judge_threshold(figure, kris, True))
    return found


def enrolment_series(sites: Sequence[SiteFacts], kris: Kris | None, as_of: date) -> dict[str, list[dict[str, Any]]]:
    """Cumulative enrolment against plan per month, per site and study-wide ("*"), up to `as_of`'s month."""
    plans = {plan.site: plan for plan in kris.enrolment_plan} if kris is not None else {}
    starts = [plan.start for plan in plans.values()] + [m for f in sites for m in f.enrolled_by_month]
    first = min(starts, default=f"{as_of:%Y-%m}")
    count = max(months_between(first, as_of), 0) + 1
    year, month = (int(part) for part in first.split("-"))
    months = [f"{year + (month - 1 + n) // 12:04d}-{(month - 1 + n) % 12 + 1:02d}" for n in range(count)]
    series: dict[str, list[dict[str, Any]]] = {}
    for facts in [*sites, combine(STUDY_WIDE, sites)]:
        covered = [f.site_id for f in sites] if facts.site_id == STUDY_WIDE else [facts.site_id]
        chosen = [plans[site] for site in covered if site in plans]
        rows, actual = [], 0
        for label in months:
            actual += facts.enrolled_by_month.get(label, 0)
            y, m = (int(part) for part in label.split("-"))
            end = as_of if label == f"{as_of:%Y-%m}" else date(y, m, calendar.monthrange(y, m)[1])
            planned = sum((planned_by(plan, end) for plan in chosen), Decimal(0)) if chosen else None
            rows.append({"month": label, "actual": actual, "planned": str(planned) if planned is not None else None})
        series[facts.site_id] = rows
    return series


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=STATUSES.index, default="none")
