"""Reference ranges: parsing a lab's text, HL7 0078 flags, choosing the most specific range."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trialstack.errors import InvalidInput
from trialstack.labs.ranges import ReferenceRange, flag, parse_range, select_range

D = Decimal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.5-5.1", (D("3.5"), D("5.1"))),
        ("3.5 - 5.1", (D("3.5"), D("5.1"))),
        ("  3.5 – 5.1  ", (D("3.5"), D("5.1"))),
        ("3.5 to 5.1", (D("3.5"), D("5.1"))),
        ("0.0-1.2 mg/dL", (D("0.0"), D("1.2"))),
        ("150,000-450,000", (D(150000), D(450000))),
        ("-2 - 2", (D(-2), D(2))),
        ("<5", (None, D(5))),
        ("<=5", (None, D(5))),
        ("≤ 5", (None, D(5))),
        (">=60", (D(60), None)),
        ("> 60 mL/min/1.73m2", (D(60), None)),
        ("<9 mcg/dL: text", (None, D(9))),
    ],
)
def test_parse_range(text: str, expected: tuple[Decimal | None, Decimal | None]) -> None:
    assert parse_range(text) == expected


def test_parsed_limits_keep_their_decimals() -> None:
    parsed = parse_range("0.0-1.20")
    assert parsed is not None
    assert [str(limit) for limit in parsed] == ["0.0", "1.20"]


@pytest.mark.parametrize("text", ["Negative", "", "see comment", "normal: 3.5-5.1", "1.2.3-4"])
def test_text_that_is_no_range(text: str) -> None:
    assert parse_range(text) is None


def test_inverted_range_is_refused() -> None:
    with pytest.raises(InvalidInput, match="low limit above"):
        parse_range("5.1-3.5")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2.4", "LL"),
        ("2.5", "L"),  # at the critical limit is not beyond it
        ("3.49", "L"),
        ("3.5", None),
        ("5.1", None),
        ("5.11", "H"),
        ("6.5", "H"),
        ("6.51", "HH"),
    ],
)
def test_flag(value: str, expected: str | None) -> None:
    assert flag(D(value), D("3.5"), D("5.1"), D("2.5"), D("6.5")) == expected


def test_flag_with_open_limits() -> None:
    assert flag(D(1000), None, D(5)) == "H"
    assert flag(D(-1000), None, D(5)) is None
    assert flag(D(59), D(60), None) == "L"
    assert flag(D(1), None, None, D(2), None) == "LL"


def potassium(**fields: object) -> ReferenceRange:
    values: dict[str, object] = {"test": "K", "low": D("3.5"), "high": D("5.1"), "unit": "mmol/L"} | fields
    return ReferenceRange(**values)  # type: ignore[arg-type]


def test_reference_range_validates_itself() -> None:
    with pytest.raises(InvalidInput):
        potassium(low=D(6))
    with pytest.raises(InvalidInput):
        potassium(critical_low=D(4))
    with pytest.raises(InvalidInput):
        potassium(critical_high=D(5))
    with pytest.raises(InvalidInput):
        potassium(age_from=18, age_to=18)
    with pytest.raises(InvalidInput):
        potassium(sex="X")


def test_reference_range_flags() -> None:
    assert potassium(critical_high=D("6.5")).flag(D(7)) == "HH"
    assert potassium().flag(D(7)) == "H"


ANY_LAB = potassium(low=D("3.4"))
ANY_LAB_FEMALE = potassium(low=D("3.3"), sex="F")
CENTRAL = potassium(low=D("3.6"), source="central")
CENTRAL_MALE = potassium(low=D("3.7"), source="central", sex="M")
CENTRAL_MALE_ELDERLY = potassium(low=D("3.8"), source="central", sex="M", age_from=65)
CENTRAL_MALE_65_75 = potassium(low=D("3.9"), source="central", sex="M", age_from=65, age_to=75)
CHILD = potassium(low=D("3.0"), age_to=18)
ALL = [ANY_LAB, ANY_LAB_FEMALE, CENTRAL, CENTRAL_MALE, CENTRAL_MALE_ELDERLY, CENTRAL_MALE_65_75, CHILD]


@pytest.mark.parametrize(
    ("source", "sex", "age", "expected"),
    [
        ("local", None, 40, ANY_LAB),
        ("local", "F", 40, ANY_LAB_FEMALE),
        ("local", "M", 40, ANY_LAB),
        ("local", "M", 10, CHILD),
        ("local", "M", None, ANY_LAB),  # unknown age: no age-banded range applies
        ("central", None, 40, CENTRAL),
        ("central", "F", 40, CENTRAL),  # the lab's own range beats a sex-specific range of any lab
        ("central", "F", 10, CENTRAL),  # ... and an age band of any lab
        ("central", "M", 40, CENTRAL_MALE),
        ("central", "M", 64, CENTRAL_MALE),  # age_from is inclusive: 65 starts the band
        ("central", "M", 65, CENTRAL_MALE_65_75),  # the narrower band
        ("central", "M", 74, CENTRAL_MALE_65_75),
        ("central", "M", 75, CENTRAL_MALE_ELDERLY),  # age_to is exclusive
        (None, "F", 40, ANY_LAB_FEMALE),
    ],
)
def test_select_most_specific_range(
    source: str | None, sex: str | None, age: int | None, expected: ReferenceRange
) -> None:
    assert select_range(ALL, "K", source, sex, age) == expected
    assert select_range(list(reversed(ALL)), "K", source, sex, age) == expected


def test_no_range_for_another_test() -> None:
    assert select_range(ALL, "NA", "central", "M", 40) is None
    assert select_range([CENTRAL], "K", "local", "M", 40) is None


def test_two_equally_specific_ranges_are_a_configuration_error() -> None:
    with pytest.raises(InvalidInput, match="equally"):
        select_range([ANY_LAB, potassium(low=D("3.3"))], "K", "local", "M", 40)


def test_a_range_listed_twice_is_not_ambiguous() -> None:
    assert select_range([ANY_LAB, ANY_LAB], "K", "local", "M", 40) == ANY_LAB
