"""Small conversions: ISO 8601 durations to days, CDISC trial phases, USDM template text, ISO countries."""

from __future__ import annotations

import pytest

from trialstack.protocol.definition import StudyPhase
from trialstack.standards.countries import alpha2
from trialstack.standards.durations import DurationError, parse_days
from trialstack.standards.phases import phase_from_cdisc
from trialstack.standards.usdm_model import ParameterMap, SyntaxTemplateDictionary
from trialstack.standards.usdm_text import plain_text


@pytest.mark.parametrize(
    ("text", "days", "noted"),
    [
        ("P14D", 14, False),
        ("-P2D", -2, False),
        ("P2W", 14, False),
        ("P1M", 30, True),
        ("PT4H", 0, True),
        ("PT48H", 2, False),
    ],
)
def test_durations(text: str, days: int, noted: bool) -> None:
    result = parse_days(text)
    assert result.days == days and (result.note is not None) == noted


@pytest.mark.parametrize("text", ["14D", "P", "PT", "P1.5", "soon"])
def test_non_durations_are_refused(text: str) -> None:
    with pytest.raises(DurationError):
        parse_days(text)


@pytest.mark.parametrize(
    ("code", "text", "phase"),
    [
        ("C15601", "", StudyPhase.PHASE_2),
        (None, "PHASE IIA TRIAL", StudyPhase.PHASE_2A),
        (None, "Phase I/II Trial", StudyPhase.PHASE_1_2),
        ("C54721", "PHASE 0 TRIAL", None),
        (None, "NOT APPLICABLE", None),
    ],
)
def test_phases(code: str | None, text: str, phase: StudyPhase | None) -> None:
    assert phase_from_cdisc(code, text) == phase


def test_template_text_is_plain_and_resolved() -> None:
    dictionary = SyntaxTemplateDictionary(
        id="D",
        parameter_maps=[
            ParameterMap(
                id="P", tag="min_age", reference='<usdm:ref klass="Quantity" id="Q1" attribute="value"></usdm:ref>'
            )
        ],
    )
    values = {("Q1", "value"): 50.0}
    text = (
        '<p>Aged <usdm:tag name="min_age"/> or more.</p>'
        '<ol><li><p>First</p></li><li>Second <usdm:tag name="x"/></li></ol>'
    )
    assert plain_text(text, dictionary, lambda i, a: values.get((i, a))) == "Aged 50 or more. First Second [x]"


def test_countries() -> None:
    assert (alpha2("GBR"), alpha2("deu"), alpha2("FR"), alpha2("XYZ")) == ("GB", "DE", "FR", None)
