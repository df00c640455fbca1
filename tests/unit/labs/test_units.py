"""Unit conversion: known clinical factors, the UCUM spellings and aliases, and the errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trialstack.errors import InvalidInput
from trialstack.terminology.units import (
    Conversion,
    IncompatibleUnits,
    UnknownUnit,
    canonical_unit,
    conversion,
    is_known_unit,
    round_to,
)

CREATININE = Decimal("113.12")
GLUCOSE = Decimal("180.16")
BILIRUBIN = Decimal("584.66")
UREA = Decimal("60.06")
CALCIUM = Decimal("40.08")
CHOLESTEROL = Decimal("386.65")


def close(actual: Decimal, expected: str, tolerance: str) -> bool:
    return abs(actual - Decimal(expected)) <= Decimal(tolerance)


def test_creatinine_1_mg_dl_is_88_4_umol_l() -> None:
    value = conversion("mg/dL", "umol/L", CREATININE).apply(Decimal("1.0"))
    assert close(value, "88.4", "0.1")
    assert round_to(value, 1) == Decimal("88.4")


def test_creatinine_back_from_umol_l() -> None:
    assert close(conversion("µmol/L", "mg/dL", CREATININE).apply(Decimal("88.4")), "1.0", "0.001")


def test_glucose_100_mg_dl_is_5_55_mmol_l() -> None:
    assert round_to(conversion("mg/dL", "mmol/L", GLUCOSE).apply(Decimal(100)), 2) == Decimal("5.55")


@pytest.mark.parametrize(
    ("source", "target", "molar_mass", "value", "expected", "tolerance"),
    [
        ("mg/dL", "umol/L", BILIRUBIN, "1", "17.1", "0.01"),
        ("mg/dL", "mmol/L", UREA, "60.06", "10", "0.0001"),
        ("mg/dL", "mmol/L", CALCIUM, "10", "2.495", "0.001"),
        ("mg/dL", "mmol/L", CHOLESTEROL, "200", "5.17", "0.01"),
        ("mmol/L", "mg/dL", GLUCOSE, "5.551", "100", "0.01"),
    ],
)
def test_mass_to_amount_with_molar_mass(
    source: str, target: str, molar_mass: Decimal, value: str, expected: str, tolerance: str
) -> None:
    assert close(conversion(source, target, molar_mass).apply(Decimal(value)), expected, tolerance)


@pytest.mark.parametrize(
    ("source", "target", "factor"),
    [
        ("g/dL", "g/L", "10"),
        ("g/L", "g/dL", "0.1"),
        ("10*3/uL", "10*9/L", "1"),
        ("10^3/uL", "x10E9/L", "1"),
        ("K/uL", "10*9/L", "1"),
        ("/uL", "10*9/L", "0.001"),
        ("cells/uL", "10*9/L", "0.001"),
        ("10*6/uL", "10*12/L", "1"),
        ("ukat/L", "U/L", "60"),
        ("ukat/L", "IU/L", "60"),
        ("[IU]/L", "U/L", "1"),
        ("mEq/L", "mmol/L", "1"),
        ("mg/dL", "mg/L", "10"),
        ("ug/dL", "ng/mL", "10"),
        ("mg/L", "mg/dL", "0.1"),
        ("%", "%", "1"),
        ("mmol/L", "umol/L", "1000"),
    ],
)
def test_exact_factors(source: str, target: str, factor: str) -> None:
    assert conversion(source, target).factor == Decimal(factor)


def test_u_l_to_ukat_l() -> None:
    assert close(conversion("U/L", "ukat/L").apply(Decimal(60)), "1", "1e-12")
    assert close(conversion("U/l", "µkat/L").apply(Decimal(40)), "0.6667", "0.0001")


def test_conversion_is_a_frozen_cached_decimal_multiply() -> None:
    first = conversion("mg/dL", "umol/L", CREATININE)
    assert first is conversion("mg/dL", "umol/L", CREATININE)
    assert isinstance(first, Conversion)
    assert isinstance(first.factor, Decimal)
    assert first.apply(Decimal(2)) == Decimal(2) * first.factor
    with pytest.raises(AttributeError):
        first.factor = Decimal(1)  # type: ignore[misc]


def test_molar_mass_is_ignored_when_not_needed() -> None:
    assert conversion("g/dL", "g/L", CREATININE).factor == Decimal(10)


@pytest.mark.parametrize(
    ("text", "ucum"),
    [
        ("MG/DL", "mg/dL"),
        ("mmol/l", "mmol/L"),
        ("x10E9/L", "10*9/L"),
        ("10^9/L", "10*9/L"),
        ("x10^12/L", "10*12/L"),
        ("K/uL", "10*3/uL"),
        ("cells/uL", "/uL"),
        ("U/l", "U/L"),
        ("IU/L", "[IU]/L"),
        ("µmol/L", "umol/L"),
        ("μmol/L", "umol/L"),
        ("UMOL/L", "umol/L"),
        (" mg / dL ", "mg/dL"),
        ("mcg/dL", "ug/dL"),
        ("FL", "fL"),
        ("mL/min/1.73m2", "mL/min/{1.73_m2}"),
        ("mL/min/{1.73_m2}", "mL/min/{1.73_m2}"),
        ("%", "%"),
    ],
)
def test_canonical_unit(text: str, ucum: str) -> None:
    assert is_known_unit(text)
    assert canonical_unit(text) == ucum


@pytest.mark.parametrize("text", ["furlong", "", "mg", "G/L", "mg/dL/s"])
def test_unknown_unit(text: str) -> None:
    assert not is_known_unit(text)
    with pytest.raises(UnknownUnit) as raised:
        conversion(text, "mg/dL")
    assert raised.value.unit == text
    assert repr(text) in raised.value.message


def test_giga_per_litre_is_refused_not_read_as_grams() -> None:
    with pytest.raises(UnknownUnit, match="ambiguous"):
        canonical_unit("G/L")
    assert canonical_unit("g/l") == "g/L"


def test_unknown_target_unit_is_named() -> None:
    with pytest.raises(UnknownUnit, match="'furlong/L'"):
        conversion("mg/dL", "furlong/L")


def test_errors_are_invalid_input() -> None:
    assert issubclass(UnknownUnit, InvalidInput)
    assert issubclass(IncompatibleUnits, InvalidInput)


def test_molar_mass_missing() -> None:
    with pytest.raises(IncompatibleUnits) as raised:
        conversion("mg/dL", "mmol/L")
    assert raised.value.message == "mg/dL cannot be converted to mmol/L without the analyte's molar mass (g/mol)"
    assert (raised.value.from_unit, raised.value.to_unit) == ("mg/dL", "mmol/L")


@pytest.mark.parametrize(
    ("source", "target", "words"),
    [
        ("mg/dL", "%", "mg/dL is a mass concentration and % is a dimensionless fraction"),
        ("10*9/L", "g/L", "10*9/L is a number concentration"),
        ("U/L", "mmol/L", "U/L is a catalytic (enzyme activity) concentration"),
        ("mL/min", "mL/min/1.73m2", "per 1.73 m² body surface area"),
        ("fL", "pg", "fL is a volume and pg is a mass"),
    ],
)
def test_incompatible_units(source: str, target: str, words: str) -> None:
    with pytest.raises(IncompatibleUnits) as raised:
        conversion(source, target, CREATININE)
    assert words in raised.value.message


def test_molar_mass_must_be_positive() -> None:
    with pytest.raises(InvalidInput, match="positive"):
        conversion("mg/dL", "mmol/L", Decimal(0))


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [("2.25", 1, "2.3"), ("2.35", 1, "2.4"), ("-2.25", 1, "-2.3"), ("88.40169", 1, "88.4"), ("5", 2, "5.00")],
)
def test_round_to_half_up(value: str, decimals: int, expected: str) -> None:
    rounded = round_to(Decimal(value), decimals)
    assert rounded == Decimal(expected)
    assert str(rounded) == expected
