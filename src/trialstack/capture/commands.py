"""Commands of the capture context: what site staff, monitors and data managers ask for."""

from __future__ import annotations

from dataclasses import dataclass, field

from trialstack.capture.refs import FormKey, VisitKey


@dataclass(frozen=True)
class ScreenSubject:
    site_id: str
    screened_on: str


@dataclass(frozen=True)
class EnrolSubject:
    subject_id: str
    enrolled_on: str


@dataclass(frozen=True)
class ScreenFailSubject:
    subject_id: str
    failed_on: str
    reason: str


@dataclass(frozen=True)
class WithdrawSubject:
    subject_id: str
    withdrawn_on: str
    reason: str


@dataclass(frozen=True)
class ErasePersonalData:
    """Crypto-shred a subject's personal data (its vault key); the clinical data and the audit trail stay."""

    subject_id: str
    reason: str


@dataclass(frozen=True)
class CompleteSubject:
    subject_id: str
    completed_on: str


@dataclass(frozen=True)
class RecordVisitDate:
    subject_id: str
    visit: VisitKey
    visit_date: str
    reason: str | None = None


@dataclass(frozen=True)
class ItemInput:
    """One item as submitted: a value (with its unit), or not done with a reason."""

    value: str | None = None
    unit: str | None = None
    not_done_reason: str | None = None
    reason_for_change: str | None = None


@dataclass(frozen=True)
class SaveForm:
    """Save items of one form instance; `reason` applies to every changed item without its own."""

    subject_id: str
    form: FormKey
    items: dict[str, ItemInput] = field(default_factory=dict)
    reason: str | None = None


@dataclass(frozen=True)
class VerifySourceData:
    """SDV of a form instance: `items` empty means every item that requires SDV."""

    subject_id: str
    form: FormKey
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class FreezeForm:
    subject_id: str
    form: FormKey


@dataclass(frozen=True)
class UnfreezeForm:
    subject_id: str
    form: FormKey
    reason: str


@dataclass(frozen=True)
class LockCasebook:
    subject_id: str


@dataclass(frozen=True)
class UnlockCasebook:
    subject_id: str
    reason: str


@dataclass(frozen=True)
class SignCasebook:
    """Sign the whole casebook (`form` None) or one form instance; the adapter has re-authenticated the signer."""

    subject_id: str
    meaning: str
    signer: str
    printed_name: str
    form: FormKey | None = None


@dataclass(frozen=True)
class LockStudy:
    study_id: str


@dataclass(frozen=True)
class UnlockStudy:
    study_id: str
    reason: str
