"""The ledger: one append-only, hash-chained table of events; the source of truth and the audit trail."""

from trialstack.ledger.envelope import Actor, NewEvent, RecordedEvent
from trialstack.ledger.errors import (
    ConcurrencyConflict,
    DatabaseUnavailable,
    LedgerError,
    NonCanonicalPayload,
)

__all__ = [
    "Actor",
    "ConcurrencyConflict",
    "DatabaseUnavailable",
    "LedgerError",
    "NewEvent",
    "NonCanonicalPayload",
    "RecordedEvent",
]
