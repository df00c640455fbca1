"""Plausible item values for simulated site entry: clinical profiles for known CDASH items, generic otherwise.

Known items (vital signs, chemistry, demographics, adverse events) get physiologically plausible values; any
other item gets a value that fits its type, range and codelist, so the simulator runs on any study.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from trialstack.protocol.definition import Item, ItemType, StudyDefinition

AE_TERMS = ("Headache", "Dizziness", "Peripheral oedema", "Fatigue", "Nausea", "Cough", "Hyperkalaemia", "Back pain")
SINGLE_ANSWER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*==\s*"([^"]*)"')
DECODES = {"F": "Female", "M": "Male", "Y": "Yes", "N": "No"}
"""What the single-letter CDISC submission values mean, to find them in codelists that code them otherwise."""
CM_TERMS = (("Paracetamol", "Headache"), ("Atorvastatin", "Hypercholesterolaemia"), ("Metformin", "Type 2 diabetes"))


@dataclass
class SubjectProfile:
    """What stays true of one simulated subject across visits."""

    sex: str
    age: int
    baseline_sbp: int
    weight: Decimal
    height: int


def new_profile(rng: random.Random) -> SubjectProfile:
    return SubjectProfile(
        sex=rng.choice(("M", "F")),
        age=rng.randint(25, 74) if rng.random() > 0.03 else rng.randint(76, 82),
        baseline_sbp=int(rng.gauss(158, 11)),
        weight=Decimal(str(round(rng.gauss(86, 12), 1))),
        height=int(rng.gauss(171, 9)),
    )


def _number(item: Item, value: float) -> str:
    if item.type is ItemType.INTEGER:
        return str(round(value))
    digits = item.fraction_digits if item.fraction_digits is not None else 1
    return format(Decimal(str(value)).quantize(Decimal(1).scaleb(-digits)), "f")


def eligible_answers(definition: StudyDefinition) -> dict[tuple[str, str], str]:
    """(form, item) -> the answer that meets a criterion reading just that item (`IN01 == "Y"`): how a site
    answers an eligibility confirmation form imported from USDM, one question per criterion."""
    declared = definition.eligibility
    if declared is None:
        return {}
    answers = {}
    for criterion in declared.criteria:
        match = SINGLE_ANSWER.fullmatch(criterion.expression.strip())
        if match is not None:
            answers[(declared.form, match.group(1))] = match.group(2)
    return answers


class ValueMaker:
    """Values for one form instance at one visit date, from the subject's profile."""

    def __init__(self, definition: StudyDefinition, rng: random.Random) -> None:
        self._definition = definition
        self._rng = rng
        self._eligible = eligible_answers(definition)

    def form_values(
        self, form_id: str, profile: SubjectProfile, visit_date: date, consent: date, week: int
    ) -> dict[str, str]:
        form = self._definition.form(form_id)
        if form is None:
            return {}
        values: dict[str, str] = {}
        for item in form.items:
            if item.derived is not None:
                continue
            value = self._value(form_id, item, profile, visit_date, consent, week)
            if value is not None:
                values[item.id] = value
        return values

    def _value(self, form_id: str, item: Item, p: SubjectProfile, on: date, consent: date, week: int) -> str | None:
        rng = self._rng
        sbp = p.baseline_sbp - (min(week, 12) * rng.uniform(0.4, 1.4) if week > 0 else 0) + rng.gauss(0, 4)
        clinical: dict[str, object] = {
            "SYSBP": sbp,
            "DIABP": min(sbp - 35, rng.gauss(92, 7)),
            "PULSE": rng.gauss(73, 8),
            "WEIGHT": float(p.weight) + rng.gauss(0, 1.2),
            "HEIGHT": p.height if week < 0 else None,
            "TEMP": rng.gauss(36.7, 0.25),
            "K": rng.gauss(4.2, 0.35),
            "SODIUM": rng.gauss(140, 2.5),
            "CREAT": max(0.4, rng.gauss(0.95, 0.18)),
            "ALT": max(6, rng.gauss(26, 9)),
            "GLUC": rng.gauss(101, 14),
            "SEX": p.sex,
            "CHILDPOT": "N" if p.sex == "F" else None,
            "BRTHDAT": date(consent.year - p.age, rng.randint(1, 12), rng.randint(1, 28)) - timedelta(days=366),
            "ICDAT": consent,
            "ICVERS": "1.0" if rng.random() > 0.02 else "0.9",
            "RACE": rng.choice(("WHITE", "WHITE", "BLACK OR AFRICAN AMERICAN", "ASIAN", "NOT REPORTED")),
            "ETHNIC": rng.choice(("NOT HISPANIC OR LATINO", "NOT HISPANIC OR LATINO", "HISPANIC OR LATINO")),
            "IEINC03": "Y" if rng.random() > 0.03 else "N",
            "IEEXC02": "N" if rng.random() > 0.03 else "Y",
            "IEEXC04": "N",
            "IEEXC05": "N" if p.sex == "F" else None,
            "IEYN": "Y",
            "LBPERF": "Y",
            "LBDAT": on - timedelta(days=rng.choice((0, 0, 1))),
        }
        if item.id in clinical:
            value = clinical[item.id]
            if value is None:
                return None
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, float | int) and not isinstance(value, bool):
                return _number(item, float(value))
            if item.type is ItemType.CHOICE:
                return self._code(item, str(value)) or self._generic(item, on)
            return str(value)
        eligible = self._eligible.get((form_id, item.id))
        if eligible is not None and rng.random() > 0.01:
            return eligible
        return self._generic(item, on)

    def _code(self, item: Item, value: str) -> str | None:
        """The item's code for a CDISC submission value (`F`, `Y`, `WHITE`): itself, or the code whose decode
        says the same (`C16576` "Female" in an imported study); None when the codelist has no such answer."""
        codelist = self._definition.codelist(item.codelist) if item.codelist else None
        if codelist is None or value in codelist.codes():
            return value
        wanted = {value.casefold(), DECODES.get(value, value).casefold()}
        return next((c.code for c in codelist.items if c.decode.casefold() in wanted), None)

    def _generic(self, item: Item, on: date) -> str | None:
        rng = self._rng
        if item.show_if is not None:
            return None
        if item.type is ItemType.DATE:
            return on.isoformat()
        if item.type is ItemType.DATETIME:
            return f"{on.isoformat()}T09:{rng.randint(0, 59):02d}"
        if item.type is ItemType.TIME:
            return f"{rng.randint(8, 16):02d}:{rng.randint(0, 59):02d}"
        if item.type is ItemType.BOOLEAN:
            return "false"
        if item.type is ItemType.CHOICE:
            codelist = self._definition.codelist(item.codelist) if item.codelist else None
            return rng.choice(codelist.codes()) if codelist is not None else None
        if item.type in (ItemType.INTEGER, ItemType.DECIMAL):
            low = float(item.range.min) if item.range is not None and item.range.min is not None else 0.0
            high = float(item.range.max) if item.range is not None and item.range.max is not None else low + 100
            return _number(item, rng.uniform(low + (high - low) * 0.3, low + (high - low) * 0.6))
        return "Not specified"[: item.max_length or 200]

    def adverse_event(self, start: date, ongoing: bool) -> dict[str, str]:
        rng = self._rng
        values = {
            "AETERM": rng.choice(AE_TERMS),
            "AESTDAT": start.isoformat(),
            "AEONGO": "Y" if ongoing else "N",
            "AESER": "N" if rng.random() > 0.04 else "Y",
            "AESEV": rng.choice(("MILD", "MILD", "MODERATE", "SEVERE")),
            "AEREL": rng.choice(("NOT RELATED", "UNLIKELY RELATED", "POSSIBLY RELATED")),
            "AEACN": "DOSE NOT CHANGED",
            "AEOUT": "RECOVERING/RESOLVING" if ongoing else "RECOVERED/RESOLVED",
        }
        if not ongoing:
            values["AEENDAT"] = (start + timedelta(days=rng.randint(2, 14))).isoformat()
        return values

    def medication(self, start: date) -> dict[str, str]:
        name, indication = self._rng.choice(CM_TERMS)
        return {"CMTRT": name, "CMINDC": indication, "CMSTDAT": start.isoformat(), "CMONGO": "Y"}

    def typo(self, item: Item, value: str) -> str:
        """A transcription error a site might make: a doubled digit or a shifted decimal point."""
        if item.type is ItemType.INTEGER:
            return value + value[-1]
        return value.replace(".", "") if "." in value else value + "0"
