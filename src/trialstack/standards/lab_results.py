"""The neutral shape every lab feed is parsed into (CSV, HL7 v2 ORU^R01, FHIR R4), before the protocol sees it.

Parsers here only read their format: they neither know the study's tests nor its subjects. The `labs` context
matches, converts, ranges and grades what they give it. Everything is text, as the source gave it (values are
not turned into floats: the ledger keeps decimals as strings, DESIGN.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from trialstack.errors import InvalidInput


class ResultStatus(StrEnum):
    """A result's status as the laboratory reports it (HL7 OBX-11; FHIR Observation.status; a CSV column)."""

    FINAL = "final"
    PRELIMINARY = "preliminary"
    CORRECTED = "corrected"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class LabObservation:
    """One result of one test on one sample, as a laboratory sent it.

    `location` says where in the source it came from ("line 14", "message 2, OBX 3 (segment 9)",
    "Bundle.entry[12]") so that every later error can point there. `patient_id` is what the lab calls the
    participant (the screening number, or the lab's own id that an identifier mapping resolves). `sex` (M/F/U)
    and `age_years` are what the message says; a date of birth is personal data and never leaves the parser.
    `version` distinguishes a laboratory's successive reports of the same result (HL7 OBX-19/OBR-22 or the
    message id, FHIR meta.versionId or lastUpdated, a CSV column): with `accession` and `test_code` it makes the
    result's external id. Dates are ISO 8601 text (a datetime with its offset when the source has one).
    """

    location: str
    patient_id: str
    accession: str
    test_code: str
    test_system: str | None
    test_name: str | None
    value: str
    unit: str | None
    status: ResultStatus
    version: str
    collected_at: str | None
    reported_at: str | None = None
    reference_range: str | None = None
    flags: str | None = None
    visit: str | None = None
    sex: str | None = None
    age_years: int | None = None
    comment: str | None = None


class LabParseError(InvalidInput):
    """A lab file or message that cannot be read: where (file, line or segment, field) and why."""

    code = "lab-parse-error"

    def __init__(self, location: str, field: str | None, reason: str) -> None:
        where = f"{location}, field {field}" if field else location
        super().__init__(f"{where}: {reason}", field=field)
        self.location = location
        self.reason = reason
