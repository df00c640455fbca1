"""The one error hierarchy: every error TrialStack raises on purpose derives from TrialStackError."""

from __future__ import annotations


class TrialStackError(Exception):
    """Base of every deliberate TrialStack error; `code` is the machine-readable problem type."""

    code = "trialstack-error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class DomainRuleViolation(TrialStackError):
    """A command is not allowed by the current state or the protocol."""

    code = "domain-rule-violation"


class NotFound(TrialStackError):
    """The thing a command or read names does not exist."""

    code = "not-found"


class InvalidInput(TrialStackError):
    """Input that cannot be parsed or does not fit its declared type."""

    code = "invalid-input"
