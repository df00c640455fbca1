"""Commands of the consent context. Invitation codes, passwords and typed names travel here, never in events."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InviteParticipant:
    subject_id: str
    language: str = "en"
    valid_hours: int = 72


@dataclass(frozen=True)
class ActivateParticipant:
    """The participant's first visit to the app: the one-time code, and the account they choose."""

    code: str = field(repr=False)
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class SignConsent:
    """The participant's signature; `sections_read` maps section number → seconds spent reading it.

    `signed_by` is `participant` or `legally_authorised_representative` (then `representative_relationship`).
    An impartial witness, when one attended, is named in `witness_name`.
    """

    subject_id: str
    document_id: str
    version: str
    language: str
    printed_name: str = field(repr=False)
    sections_read: dict[int, int]
    answers: dict[str, str]
    choices: dict[str, bool]
    signed_by: str = "participant"
    representative_relationship: str | None = None
    witness_name: str | None = field(default=None, repr=False)
    attempts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CountersignConsent:
    subject_id: str
    document_id: str


@dataclass(frozen=True)
class RecordPaperConsent:
    subject_id: str
    document_id: str
    version: str
    signed_on: str
    language: str = "en"
    choices: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class WithdrawConsent:
    """Withdraw the whole document, or only `part`; `continues` names what goes on (e.g. `safety_follow_up`)."""

    subject_id: str
    document_id: str
    withdrawn_on: str
    reason: str
    part: str | None = None
    continues: tuple[str, ...] = ()
