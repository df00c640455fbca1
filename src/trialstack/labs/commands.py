"""Commands of the labs context. Receiving results is the inbound feed's command (the adapters parse the file or
message into observations first); the others are a data manager's (triage) and an investigator's (alerts)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from trialstack.standards.lab_results import LabObservation, LabParseError


@dataclass(frozen=True)
class ReceiveLabResults:
    """A laboratory's results (a file, an HL7 message, a FHIR bundle). Parse errors come in the same stream of
    rows so that the report locates them in order; `accept_valid` takes the valid rows of a file with errors."""

    source: str
    observations: Iterable[LabObservation | LabParseError]
    accept_valid: bool = False


@dataclass(frozen=True)
class AssignLabResult:
    triage_id: str
    subject_id: str
    visit: str | None
    remember: bool
    reason: str


@dataclass(frozen=True)
class RejectLabResult:
    triage_id: str
    reason: str


@dataclass(frozen=True)
class ConfirmLabAlert:
    """The investigator confirms the adverse event a lab alert proposed (the term may be edited)."""

    alert_id: str
    term: str | None = None


@dataclass(frozen=True)
class DismissLabAlert:
    alert_id: str
    reason: str
