"""What an ODM export needs from captured data, as a Protocol the capture read models implement.

The records are plain, frozen values keyed by TrialStack ids (visit, form and item ids of the
StudyDefinition; user and site ids of the platform): no database, no ORM, no event types. Values are
text exactly as stored (ISO 8601 dates, decimals as strings), because ODM carries values as text too.
`subjects()` is iterated once and may stream: the exporter writes each subject and lets it go.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

QueryStatus = Literal["open", "answered", "closed"]


@dataclass(frozen=True)
class UserRecord:
    """A platform user who entered, changed or signed data (ODM AdminData/User)."""

    id: str
    display_name: str | None = None


@dataclass(frozen=True)
class SignatureDefinition:
    """What a signature means, once per meaning (ODM SignatureDef): "I confirm the data ... is accurate"."""

    id: str
    meaning: str
    legal_reason: str
    methodology: Literal["Electronic", "Digital"] = "Electronic"


@dataclass(frozen=True)
class SignatureRecord:
    """One signing: who, where, when, under which meaning."""

    definition_id: str
    user_id: str
    site_id: str
    signed_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    """One change of an item value; the first entry of an item is its initial entry (old_value None)."""

    user_id: str
    site_id: str
    at: datetime
    old_value: str | None
    new_value: str | None
    reason: str | None = None


@dataclass(frozen=True)
class QueryMessage:
    """One message of a data clarification: the question, an answer, a re-query or the closing note."""

    author_id: str
    at: datetime
    text: str
    from_site: bool


@dataclass(frozen=True)
class QueryRecord:
    id: str
    status: QueryStatus
    messages: tuple[QueryMessage, ...]


@dataclass(frozen=True)
class ItemRecord:
    """An item's current value, its audit trail (oldest first) and the queries raised on it."""

    item_id: str
    value: str | None
    audit: tuple[AuditEntry, ...] = ()
    queries: tuple[QueryRecord, ...] = ()


@dataclass(frozen=True)
class FormRecord:
    """One form instance; `repeat` numbers the instances of a repeating form (1, 2, ...)."""

    form_id: str
    items: tuple[ItemRecord, ...]
    repeat: int | None = None
    signatures: tuple[SignatureRecord, ...] = ()


@dataclass(frozen=True)
class VisitRecord:
    """One visit instance; `repeat` numbers the instances of a repeating visit.

    `date` is the visit date (ISO 8601), `date_audit` its entry and corrections (oldest first), and
    `date_queries` the clarifications raised on the date itself (a visit outside its window).
    """

    visit_id: str
    forms: tuple[FormRecord, ...]
    repeat: int | None = None
    date: str | None = None
    date_audit: tuple[AuditEntry, ...] = ()
    date_queries: tuple[QueryRecord, ...] = ()


@dataclass(frozen=True)
class SubjectRecord:
    """A subject's casebook: visits, log forms (adverse events, medications) and casebook signatures."""

    subject_key: str
    site_id: str
    visits: tuple[VisitRecord, ...] = ()
    log_forms: tuple[FormRecord, ...] = ()
    signatures: tuple[SignatureRecord, ...] = ()


class ClinicalDataSource(Protocol):
    """The captured data of one study, as the ODM exporter reads it."""

    def users(self) -> Iterable[UserRecord]:
        """Every user that any audit entry, signature or query message names."""
        ...

    def signature_definitions(self) -> Iterable[SignatureDefinition]:
        """Every signature meaning that any signature record refers to."""
        ...

    def subjects(self) -> Iterable[SubjectRecord]:
        """The subjects, each complete; may be a generator over a database cursor."""
        ...
