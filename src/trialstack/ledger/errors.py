"""Errors of the ledger: conflicts, refused payloads, unreachable databases, broken chains."""

from __future__ import annotations

from trialstack.errors import TrialStackError


class LedgerError(TrialStackError):
    code = "ledger-error"


class ConcurrencyConflict(LedgerError):
    """Another writer appended to the stream first; reload, decide again, retry."""

    code = "concurrency-conflict"

    def __init__(self, stream_type: str, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream_type} {stream_id!r} is at version {actual}, expected {expected}",
            field="stream_version",
        )
        self.stream_type = stream_type
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class NonCanonicalPayload(LedgerError):
    """A payload outside the JSON subset the ledger hashes (no floats, NaN, bytes, non-string keys...)."""

    code = "non-canonical-payload"


class DatabaseUnavailable(LedgerError):
    """The database URL cannot be reached or opened."""

    code = "database-unavailable"
