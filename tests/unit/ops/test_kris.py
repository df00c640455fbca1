"""KRI figures from a site's facts, pure: thresholds above and below (reaching a level counts), per site or
study-wide, enrolment against a plan pro-rated within the month, query age bands, AE and SAE rates on the funnel
plot with the whole study as its centre."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from trialstack.ops.kris import (
    Figure,
    SiteFacts,
    age_bands,
    combine,
    enrolment_series,
    figures,
    judge_threshold,
    planned_by,
)
from trialstack.protocol.definition import (
    AppliesTo,
    Direction,
    EnrolmentPlan,
    KriId,
    Kris,
    KriThreshold,
)

AS_OF = date(2026, 3, 15)


def _kris(*thresholds: KriThreshold, plans: tuple[EnrolmentPlan, ...] = ()) -> Kris:
    return Kris(enrolment_plan=plans, thresholds=thresholds)


def _by(found: list[Figure], kri: KriId, site: str) -> Figure:
    return next(f for f in found if f.kri is kri and f.site_id == site)


def test_reaching_a_level_gives_its_status_in_the_threshold_direction() -> None:
    above = _kris(KriThreshold(kri=KriId.OPEN_QUERIES, warn=5, breach=10, direction=Direction.ABOVE))
    below = _kris(KriThreshold(kri=KriId.EPRO_COMPLIANCE, warn=80, breach=60, direction=Direction.BELOW))

    def status(kris: Kris, kri: KriId, value: str) -> tuple[str, Decimal | None]:
        judged = judge_threshold(Figure(kri, "0101", Decimal(value), None, None), kris, False)
        return judged.status, judged.threshold

    assert status(above, KriId.OPEN_QUERIES, "4") == ("ok", Decimal(5))
    assert status(above, KriId.OPEN_QUERIES, "5") == ("warn", Decimal(5))
    assert status(above, KriId.OPEN_QUERIES, "10") == ("breach", Decimal(10))
    assert status(below, KriId.EPRO_COMPLIANCE, "80.1") == ("ok", Decimal(80))
    assert status(below, KriId.EPRO_COMPLIANCE, "80") == ("warn", Decimal(80))
    assert status(below, KriId.EPRO_COMPLIANCE, "59.9") == ("breach", Decimal(60))
    assert status(above, KriId.SDV_BACKLOG, "99") == ("none", None), "no threshold, no status"
    unknown = judge_threshold(Figure(KriId.OPEN_QUERIES, "0101", None, None, None), above, False)
    assert unknown.status == "none"


def test_a_site_level_threshold_leaves_the_study_wide_figure_unjudged() -> None:
    kris = _kris(KriThreshold(kri=KriId.SDV_BACKLOG, warn=3, direction=Direction.ABOVE, applies_to=AppliesTo.SITE))
    found = figures([SiteFacts("0101", sdv_backlog=2), SiteFacts("0102", sdv_backlog=2)], kris, AS_OF)
    assert [_by(found, KriId.SDV_BACKLOG, s).status for s in ("0101", "0102", "*")] == ["ok", "ok", "none"]
    assert _by(found, KriId.SDV_BACKLOG, "*").value == 4


def test_enrolment_is_measured_against_the_plan_pro_rated_within_the_month() -> None:
    plan = EnrolmentPlan.model_validate({"site": "0101", "from": "2026-01", "per_month": 4, "target": 10})
    assert planned_by(plan, date(2025, 12, 31)) == 0
    assert planned_by(plan, date(2026, 1, 31)) == 4
    assert planned_by(plan, date(2026, 2, 14)) == 6
    assert planned_by(plan, date(2026, 4, 1)) == 10, "never beyond the target"
    kris = _kris(KriThreshold(kri=KriId.ENROLMENT_VS_PLAN, warn=80, breach=50, direction=Direction.BELOW),
                 plans=(plan,))  # fmt: skip
    facts = SiteFacts("0101", screened=9, enrolled=6, enrolled_by_month={"2026-01": 4, "2026-02": 2})
    found = figures([facts, SiteFacts("0102")], kris, date(2026, 2, 14))
    mine = _by(found, KriId.ENROLMENT_VS_PLAN, "0101")
    assert (mine.value, mine.numerator, mine.denominator, mine.status) == (Decimal("100.0"), 6, Decimal(6), "ok")
    assert _by(found, KriId.ENROLMENT_VS_PLAN, "0102").value is None, "a site without a plan has no figure"
    early = _by(figures([SiteFacts("0101")], kris, date(2026, 1, 5)), KriId.ENROLMENT_VS_PLAN, "0101")
    assert early.value is None and early.status == "none", "not judged before one subject is planned"
    series = enrolment_series([facts], kris, date(2026, 2, 14))
    assert series["0101"] == [
        {"month": "2026-01", "actual": 4, "planned": "4.0"},
        {"month": "2026-02", "actual": 6, "planned": "6.0"},
    ]
    assert series["*"] == series["0101"]


def test_open_queries_fall_in_age_bands_and_the_oldest_count_over_30_days() -> None:
    assert age_bands([0, 7, 8, 14, 15, 30, 31, 90]) == {"0-7": 2, "8-14": 2, "15-30": 2, ">30": 2}
    found = figures([SiteFacts("0101", open_query_ages=(3, 31, 45))], None, AS_OF)
    assert _by(found, KriId.OPEN_QUERIES, "0101").detail["bands"] == {"0-7": 1, "8-14": 0, "15-30": 0, ">30": 2}
    assert _by(found, KriId.QUERY_AGE_OVER_30, "0101").value == 2


def test_rates_and_ratios() -> None:
    facts = SiteFacts("0101", enrolled=3, screen_failed=1, closed_queries=4, close_days=10, lag_forms=3, lag_days=4,
                      expected_pages=10, entered_pages=7, windowed_visits=20, out_of_window=1, forms_entered=50,
                      check_failures=5, epro_done=9, epro_missed=1, subject_days=3044, aes=6, saes=1)  # fmt: skip
    found = {f.kri: f for f in figures([facts], None, AS_OF) if f.site_id == "0101"}
    assert found[KriId.SCREEN_FAILURE_RATE].value == Decimal("25.0")
    assert found[KriId.QUERY_TURNAROUND].value == Decimal("2.5")
    assert found[KriId.DATA_ENTRY_LAG].value == Decimal("1.3")
    assert found[KriId.MISSING_PAGES].value == 3
    assert found[KriId.VISITS_OUT_OF_WINDOW].value == Decimal("5.0")
    assert found[KriId.EDIT_CHECK_FAILURES].value == Decimal("10.0")
    assert found[KriId.EPRO_COMPLIANCE].value == Decimal("90.0")
    assert found[KriId.AE_RATE].value == Decimal("6.00"), "6 AEs in 100.01 subject-months"
    assert found[KriId.SAE_RATE].denominator == Decimal("100.01")


def test_a_site_far_from_the_study_rate_is_flagged_on_the_funnel_and_the_study_row_is_not() -> None:
    sites = [SiteFacts(f"01{n:02d}", subject_days=3044, aes=10) for n in range(1, 6)]
    sites.append(SiteFacts("0199", subject_days=3044, aes=0))
    found = figures(sites, None, AS_OF)
    quiet = _by(found, KriId.AE_RATE, "0199")
    assert quiet.status == "breach" and quiet.detail["funnel"]["side"] == "low"
    assert quiet.threshold is not None and quiet.threshold > 0
    assert _by(found, KriId.AE_RATE, "0101").status == "ok"
    assert _by(found, KriId.AE_RATE, "*").status == "none"
    alone = figures([sites[-1]], None, AS_OF, reference=combine("*", sites))
    assert _by(alone, KriId.AE_RATE, "0199").status == "breach", "a user seeing one site sees it against the study"
    assert _by(alone, KriId.AE_RATE, "*").value == 0


def test_screen_failures_show_their_binomial_funnel_beside_the_threshold_status() -> None:
    sites = [SiteFacts("0101", enrolled=18, screen_failed=2), SiteFacts("0102", enrolled=2, screen_failed=8)]
    found = figures(sites, None, AS_OF)
    flagged = _by(found, KriId.SCREEN_FAILURE_RATE, "0102")
    assert flagged.status == "none" and flagged.detail["funnel"]["flag"] == "warn"
    assert flagged.detail["funnel"]["side"] == "high"
