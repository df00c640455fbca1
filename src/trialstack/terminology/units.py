"""Conversion of lab values to a study's standard unit.

pint works out each conversion factor ONCE per (from, to, molar mass) and the result is cached: the
importer converts millions of values, and applying a `Conversion` is a single `Decimal` multiply (DESIGN §2:
decimals are never binary floats in events). The float factor pint computes is rounded to 15 significant
digits, which removes float noise (1e3/µL → 1e9/L is exactly 1, not 1.0000000000000002).

Units are named by their UCUM spelling (`canonical_unit`); the spellings labs actually send (`MG/DL`,
`x10E9/L`, `K/uL`, ...) are accepted as aliases, matched case-insensitively after dropping blanks.

Deliberate choices:
- `mEq/L` is taken as equal to `mmol/L`, which is only true for MONOVALENT ions (Na⁺, K⁺, Cl⁻, HCO₃⁻). For
  calcium or magnesium 1 mmol = 2 mEq: do not convert their mEq/L values with this module.
- `IU/L` and `[IU]/L` are taken as the enzyme unit (1 IU = 1 U = 1 µmol/min, the IUB definition used for
  ALT, AST, ALP, ...), so 1 µkat/L = 60 U/L. International units of biological standards (hormones,
  vitamins) are NOT convertible to mass: do not convert those.
- `mL/min/{1.73_m2}` (a clearance normalised to body surface area) is made incompatible with `mL/min`:
  UCUM treats the annotation as dimensionless, but the two are different quantities clinically.
- Mass ↔ amount-of-substance conversions need the analyte's molar mass in g/mol, passed by the caller
  (creatinine 113.12, glucose 180.16, bilirubin 584.66, urea 60.06, calcium 40.08, cholesterol 386.65).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

import pint

from trialstack.errors import InvalidInput

__all__ = [
    "Conversion",
    "IncompatibleUnits",
    "UnknownUnit",
    "canonical_unit",
    "conversion",
    "is_known_unit",
    "round_to",
]

#: The one registry of the labs context; the units below are defined on it.
REGISTRY: pint.UnitRegistry[Any] = pint.UnitRegistry()
# A clearance per 1.73 m² body surface area gets its own dimension so it never converts to plain mL/min.
REGISTRY.define("per_1_73_m2_bsa = [bsa_normalised]")
REGISTRY.define("international_unit = enzyme_unit = IU")

# UCUM spelling -> pint expression (parsed by REGISTRY).
_UCUM: dict[str, str] = {
    "10*9/L": "1e9 / liter",
    "10*12/L": "1e12 / liter",
    "10*3/uL": "1e3 / microliter",
    "10*6/uL": "1e6 / microliter",
    "/uL": "1 / microliter",
    "mg/dL": "milligram / deciliter",
    "g/dL": "gram / deciliter",
    "g/L": "gram / liter",
    "mg/L": "milligram / liter",
    "ug/dL": "microgram / deciliter",
    "ug/L": "microgram / liter",
    "ng/mL": "nanogram / milliliter",
    "mmol/L": "millimole / liter",
    "umol/L": "micromole / liter",
    "mEq/L": "millimole / liter",  # monovalent ions only: see the module docstring
    "U/L": "enzyme_unit / liter",
    "[IU]/L": "international_unit / liter",
    "ukat/L": "microkatal / liter",
    "%": "percent",
    "fL": "femtoliter",
    "pg": "picogram",
    "mL/min": "milliliter / minute",
    "mL/min/{1.73_m2}": "milliliter / minute / per_1_73_m2_bsa",
}

# Spellings labs send -> UCUM spelling; matched after `_key` (case-insensitive, blanks dropped, µ/μ -> u).
_ALIASES: dict[str, str] = {
    "x10E9/L": "10*9/L",
    "10^9/L": "10*9/L",
    "x10^9/L": "10*9/L",
    "10E9/L": "10*9/L",
    "x10*9/L": "10*9/L",
    "10^12/L": "10*12/L",
    "x10E12/L": "10*12/L",
    "x10^12/L": "10*12/L",
    "10E12/L": "10*12/L",
    "K/uL": "10*3/uL",
    "10^3/uL": "10*3/uL",
    "x10E3/uL": "10*3/uL",
    "x10^3/uL": "10*3/uL",
    "10^3/mm3": "10*3/uL",
    "M/uL": "10*6/uL",
    "10^6/uL": "10*6/uL",
    "x10E6/uL": "10*6/uL",
    "x10^6/uL": "10*6/uL",
    "cells/uL": "/uL",
    "/mm3": "/uL",
    "cells/mm3": "/uL",
    "mcg/dL": "ug/dL",
    "mcg/L": "ug/L",
    "µmol/L": "umol/L",
    "mcmol/L": "umol/L",
    "IU/L": "[IU]/L",
    "µkat/L": "ukat/L",
    "percent": "%",
    "mL/min/1.73m2": "mL/min/{1.73_m2}",
    "mL/min/1.73m²": "mL/min/{1.73_m2}",
}


# Spellings that a case-insensitive match would read wrongly: "G/L" is 10^9/L (giga per litre, French
# haematology) in a case-sensitive system but grams per litre in an upper-case-only one. Refused, not guessed.
_AMBIGUOUS: dict[str, str] = {
    "G/L": "ambiguous: 10^9/L (giga per litre) or g/L sent in capitals; ask the lab for 10*9/L or g/L",
    "G/l": "ambiguous: 10^9/L (giga per litre) or g/L; ask the lab for 10*9/L or g/L",
}


def _key(text: str) -> str:
    return "".join(text.split()).replace("µ", "u").replace("μ", "u").lower()


_LOOKUP: dict[str, str] = {_key(ucum): ucum for ucum in _UCUM} | {_key(alias): ucum for alias, ucum in _ALIASES.items()}

# Readable names of the dimensions, for error messages, keyed by a unit of that dimension.
_DIMENSION_NAMES: dict[str, str] = {
    "mg/dL": "a mass concentration",
    "mmol/L": "an amount-of-substance concentration",
    "10*9/L": "a number concentration (count per volume)",
    "U/L": "a catalytic (enzyme activity) concentration",
    "%": "a dimensionless fraction",
    "fL": "a volume",
    "pg": "a mass",
    "mL/min": "a flow rate",
    "mL/min/{1.73_m2}": "a flow rate per 1.73 m² body surface area",
}


class UnknownUnit(InvalidInput):
    """A unit text that is neither a UCUM spelling defined here nor a known alias of one."""

    code = "unknown-unit"

    def __init__(self, unit: str, reason: str = "not a UCUM unit defined for labs, nor a known alias") -> None:
        super().__init__(f"unknown unit {unit!r}: {reason}", field="unit")
        self.unit = unit


class IncompatibleUnits(InvalidInput):
    """Two known units that measure different quantities (or need a molar mass that was not given).

    `reason` completes the sentence "X cannot be converted to Y ...".
    """

    code = "incompatible-units"

    def __init__(self, from_unit: str, to_unit: str, reason: str) -> None:
        super().__init__(f"{from_unit} cannot be converted to {to_unit} {reason}", field="unit")
        self.from_unit = from_unit
        self.to_unit = to_unit
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Conversion:
    """`value_in_to_unit = value_in_from_unit × factor`; every unit defined here is multiplicative (no offset)."""

    from_unit: str
    to_unit: str
    factor: Decimal

    def apply(self, value: Decimal) -> Decimal:
        return value * self.factor


def is_known_unit(text: str) -> bool:
    return text in _UCUM or (text.strip() not in _AMBIGUOUS and _key(text) in _LOOKUP)


def canonical_unit(text: str) -> str:
    """The UCUM spelling of `text` (`MG/DL` -> `mg/dL`, `x10E9/L` -> `10*9/L`); UnknownUnit otherwise."""
    if text in _UCUM:
        return text
    if text.strip() in _AMBIGUOUS:
        raise UnknownUnit(text, _AMBIGUOUS[text.strip()])
    found = _LOOKUP.get(_key(text))
    if found is None:
        raise UnknownUnit(text)
    return found


def conversion(from_unit: str, to_unit: str, molar_mass: Decimal | None = None) -> Conversion:
    """The cached conversion between two units; `molar_mass` (g/mol) only matters for mass ↔ amount."""
    if molar_mass is not None and not molar_mass > 0:
        raise InvalidInput(f"a molar mass must be positive, not {molar_mass}", field="molar_mass")
    return _conversion(canonical_unit(from_unit), canonical_unit(to_unit), molar_mass)


@lru_cache(maxsize=1024)
def _conversion(source: str, target: str, molar_mass: Decimal | None) -> Conversion:
    if source == target:
        return Conversion(source, target, Decimal(1))
    ratio: Any = REGISTRY.parse_expression(_UCUM[source]) / REGISTRY.parse_expression(_UCUM[target])
    if not ratio.dimensionless:
        mass_per_mole: Any = REGISTRY.parse_expression("gram / mole").dimensionality
        mass_to_amount = ratio.dimensionality == mass_per_mole
        amount_to_mass = ratio.dimensionality == 1 / mass_per_mole
        if not (mass_to_amount or amount_to_mass):
            raise IncompatibleUnits(
                source, target, f"because {source} is {_describe(source)} and {target} is {_describe(target)}"
            )
        if molar_mass is None:
            raise IncompatibleUnits(source, target, "without the analyte's molar mass (g/mol)")
        per_mole: Any = REGISTRY.Quantity(float(molar_mass), "gram / mole")
        ratio = ratio / per_mole if mass_to_amount else ratio * per_mole
    factor = float(ratio.to("dimensionless").magnitude)
    return Conversion(source, target, Decimal(f"{factor:.15g}"))


def _dimensionality(ucum: str) -> Any:
    return REGISTRY.parse_expression(_UCUM[ucum]).dimensionality


def _describe(ucum: str) -> str:
    dimensionality = _dimensionality(ucum)
    for example, name in _DIMENSION_NAMES.items():
        if _dimensionality(example) == dimensionality:
            return name
    return str(dimensionality)


def round_to(value: Decimal, decimals: int) -> Decimal:
    """`value` rounded half-up (how labs present results) to `decimals` places; negative means tens, ..."""
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
