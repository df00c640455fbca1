"""The casebook of one subject: state folded from its event stream. Pure: no I/O, no clock.

The state is rebuilt by `evolve` one event at a time; decisions live in `decide.py` and read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import singledispatch
from types import MappingProxyType

from trialstack.capture import events as ev
from trialstack.capture.refs import FormKey, VisitKey


class SubjectStatus(StrEnum):
    SCREENING = "screening"
    ENROLLED = "enrolled"
    SCREEN_FAILED = "screen_failed"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"


ERASED = "[erased]"
"""What a personal value reads as once its subject's personal data was erased (the vault key is gone)."""


@dataclass(frozen=True)
class ItemState:
    value: str | None = None
    unit: str | None = None
    not_done_reason: str | None = None
    derived: bool = False
    erased: bool = False

    @property
    def has_entry(self) -> bool:
        return self.value is not None or self.not_done_reason is not None or self.erased


@dataclass(frozen=True)
class FormState:
    key: FormKey
    items: Mapping[str, ItemState] = field(default_factory=lambda: MappingProxyType({}))
    verified: frozenset[str] = frozenset()
    frozen: bool = False


@dataclass(frozen=True)
class Signature:
    signature_id: str
    scope: str
    content_hash: str
    valid: bool = True

    def covers(self, form: str) -> bool:
        return self.scope in ("casebook", form)


@dataclass(frozen=True)
class Casebook:
    """Everything decided so far about one subject, as the next decision needs it."""

    study_id: str
    subject_id: str
    site_id: str = ""
    status: SubjectStatus | None = None
    screened_on: str | None = None
    enrolled_on: str | None = None
    ended_on: str | None = None
    """The day screening failed or the subject withdrew (None while on study, and after completion)."""
    visit_dates: Mapping[VisitKey, str] = field(default_factory=lambda: MappingProxyType({}))
    forms: Mapping[FormKey, FormState] = field(default_factory=lambda: MappingProxyType({}))
    failing: frozenset[tuple[str, str]] = frozenset()
    locked: bool = False
    personal_data_erased: bool = False
    signatures: Mapping[str, Signature] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.status is not None

    @property
    def ended_early(self) -> bool:
        """Screen failed or withdrawn: the casebook takes corrections, and new data only where decide allows."""
        return self.status in (SubjectStatus.SCREEN_FAILED, SubjectStatus.WITHDRAWN)

    def form(self, key: FormKey) -> FormState:
        return self.forms.get(key) or FormState(key)

    def item(self, key: FormKey, item_id: str) -> ItemState:
        return self.form(key).items.get(item_id) or ItemState()


@dataclass(frozen=True)
class StudyStatus:
    """The study-level stream: locked or not."""

    study_id: str
    locked: bool = False
    version: int = 0


def _with_item(state: Casebook, form: str, item: str, new: ItemState) -> Casebook:
    key = FormKey.parse(form)
    current = state.form(key)
    items = dict(current.items)
    items[item] = new
    forms = dict(state.forms)
    forms[key] = replace(current, items=MappingProxyType(items))
    return replace(state, forms=MappingProxyType(forms))


def _with_form(state: Casebook, form: str, **changes: object) -> Casebook:
    key = FormKey.parse(form)
    forms = dict(state.forms)
    forms[key] = replace(state.form(key), **changes)  # type: ignore[arg-type]
    return replace(state, forms=MappingProxyType(forms))


@singledispatch
def evolve(event: object, state: Casebook) -> Casebook:
    """Fold one event into the casebook (events of other types leave it unchanged)."""
    return state


@evolve.register
def _(event: ev.SubjectScreened, state: Casebook) -> Casebook:
    return replace(state, site_id=event.site_id, status=SubjectStatus.SCREENING, screened_on=event.screened_on)


@evolve.register
def _(event: ev.SubjectEnrolled, state: Casebook) -> Casebook:
    return replace(state, status=SubjectStatus.ENROLLED, enrolled_on=event.enrolled_on)


@evolve.register
def _(event: ev.SubjectScreenFailed, state: Casebook) -> Casebook:
    return replace(state, status=SubjectStatus.SCREEN_FAILED, ended_on=event.failed_on)


@evolve.register
def _(event: ev.SubjectWithdrawn, state: Casebook) -> Casebook:
    return replace(state, status=SubjectStatus.WITHDRAWN, ended_on=event.withdrawn_on)


@evolve.register
def _(event: ev.SubjectCompleted, state: Casebook) -> Casebook:
    return replace(state, status=SubjectStatus.COMPLETED)


@evolve.register
def _(event: ev.VisitDateRecorded, state: Casebook) -> Casebook:
    dates = dict(state.visit_dates)
    dates[VisitKey.parse(event.visit)] = event.visit_date
    return replace(state, visit_dates=MappingProxyType(dates))


@evolve.register
def _(event: ev.ItemValueEntered, state: Casebook) -> Casebook:
    return _with_item(state, event.form, event.item, ItemState(value=event.value, unit=event.unit))


@evolve.register
def _(event: ev.ItemValueChanged, state: Casebook) -> Casebook:
    return _with_item(state, event.form, event.item, ItemState(value=event.value, unit=event.unit))


@evolve.register
def _(event: ev.ItemMarkedNotDone, state: Casebook) -> Casebook:
    return _with_item(state, event.form, event.item, ItemState(not_done_reason=event.not_done_reason))


@evolve.register
def _(event: ev.ItemValueDerived, state: Casebook) -> Casebook:
    return _with_item(state, event.form, event.item, ItemState(value=event.value, derived=True))


@evolve.register
def _(event: ev.PersonalDataErased, state: Casebook) -> Casebook:
    for place in event.items:
        form, item = place.rsplit("/", 1)
        state = _with_item(state, form, item, ItemState(erased=True))
    return replace(state, personal_data_erased=True)


@evolve.register
def _(event: ev.EditCheckFailed, state: Casebook) -> Casebook:
    return replace(state, failing=state.failing | {(event.check_id, event.form)})


@evolve.register
def _(event: ev.EditCheckResolved, state: Casebook) -> Casebook:
    return replace(state, failing=state.failing - {(event.check_id, event.form)})


@evolve.register
def _(event: ev.SourceDataVerified, state: Casebook) -> Casebook:
    current = state.form(FormKey.parse(event.form))
    return _with_form(state, event.form, verified=current.verified | set(event.items))


@evolve.register
def _(event: ev.SourceDataVerificationInvalidated, state: Casebook) -> Casebook:
    current = state.form(FormKey.parse(event.form))
    return _with_form(state, event.form, verified=current.verified - set(event.items))


@evolve.register
def _(event: ev.FormFrozen, state: Casebook) -> Casebook:
    return _with_form(state, event.form, frozen=True)


@evolve.register
def _(event: ev.FormUnfrozen, state: Casebook) -> Casebook:
    return _with_form(state, event.form, frozen=False)


@evolve.register
def _(event: ev.CasebookLocked, state: Casebook) -> Casebook:
    return replace(state, locked=True)


@evolve.register
def _(event: ev.CasebookUnlocked, state: Casebook) -> Casebook:
    return replace(state, locked=False)


@evolve.register
def _(event: ev.CasebookSigned, state: Casebook) -> Casebook:
    signatures = dict(state.signatures)
    signatures[event.signature_id] = Signature(event.signature_id, event.scope, event.content_hash)
    return replace(state, signatures=MappingProxyType(signatures))


@evolve.register
def _(event: ev.SignatureInvalidated, state: Casebook) -> Casebook:
    signatures = dict(state.signatures)
    signatures[event.signature_id] = replace(signatures[event.signature_id], valid=False)
    return replace(state, signatures=MappingProxyType(signatures))


def evolve_study(event: object, state: StudyStatus) -> StudyStatus:
    if isinstance(event, ev.StudyLocked):
        return replace(state, locked=True)
    if isinstance(event, ev.StudyUnlocked):
        return replace(state, locked=False)
    return state
