"""CDISC trial phase terminology (codelist C66737) to the StudyDefinition's phases.

USDM gives the phase as a code (C15601, "Phase II Trial"); ODM 2.0 as a submission value
("PHASE II TRIAL"); ODM 1.3.2 has no phase at all. Phases the model cannot express (phase 0, not
applicable) map to None: the study is imported without a phase and the importer reports the term.
"""

from __future__ import annotations

import re

from trialstack.protocol.definition import StudyPhase

# The NCI codes of C66737 that have a StudyPhase.
_BY_CODE = {
    "C15600": StudyPhase.PHASE_1,
    "C15601": StudyPhase.PHASE_2,
    "C15602": StudyPhase.PHASE_3,
    "C15603": StudyPhase.PHASE_4,
    "C15693": StudyPhase.PHASE_1_2,
    "C15694": StudyPhase.PHASE_2_3,
    "C49686": StudyPhase.PHASE_2A,
    "C49688": StudyPhase.PHASE_2B,
}
_ROMAN = {"I": "1", "II": "2", "III": "3", "IV": "4"}
_TEXT = re.compile(r"^PHASE\s+(I{1,3}|IV|[1-4])([AB])?(?:\s*/\s*(I{1,3}|IV|[1-4]))?(?:\s+TRIAL)?$")


def phase_from_cdisc(code: str | None, text: str | None = None) -> StudyPhase | None:
    """The phase for an NCI code or a CDISC phase term (`PHASE II TRIAL`, `Phase IIa Trial`), else None."""
    if code and code.strip().upper() in _BY_CODE:
        return _BY_CODE[code.strip().upper()]
    match = _TEXT.match(" ".join((text or "").upper().split()))
    if match is None:
        return None
    first, letter, second = match.groups()
    label = _ROMAN.get(first, first) + (letter or "").lower()
    if second:
        label += "/" + _ROMAN.get(second, second)
    try:
        return StudyPhase(label)
    except ValueError:
        return None
