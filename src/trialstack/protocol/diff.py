"""What changed between two study definitions: the first half of an amendment's impact analysis.

`diff_definitions` is pure and compares by identifier, so reordering visits or forms is no change.
The impact on subjects (who must re-consent, which open forms change) is computed from a StudyDiff
by the amendment code, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from trialstack.protocol.definition import ConsentVersion, StudyDefinition


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class FieldChange:
    """One field of an entity, before and after (JSON values; None when absent)."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    """An entity added, removed or changed; `entity` is e.g. "visit", "item", "consent_document"."""

    entity: str
    id: str
    kind: ChangeKind
    fields: tuple[FieldChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"entity": self.entity, "id": self.id, "change": self.kind.value}
        if self.fields:
            data["fields"] = {change.field: {"old": change.old, "new": change.new} for change in self.fields}
        return data


@dataclass(frozen=True)
class StudyDiff:
    """Every change from `old_label` to `new_label` (protocol version labels), grouped by entity."""

    old_label: str
    new_label: str
    changes: tuple[Change, ...] = field(default_factory=tuple)

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def of(self, entity: str) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.entity == entity)

    def to_json(self) -> dict[str, Any]:
        return {"old": self.old_label, "new": self.new_label, "changes": [change.to_json() for change in self.changes]}


def _json(model: BaseModel, exclude: Iterable[str] = ()) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude=set(exclude))


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[FieldChange, ...]:
    keys = list(dict.fromkeys([*old, *new]))
    return tuple(FieldChange(key, old.get(key), new.get(key)) for key in keys if old.get(key) != new.get(key))


def _diff_entities(
    entity: str,
    old: Sequence[Any],
    new: Sequence[Any],
    *,
    key: str = "id",
    prefix: str = "",
    exclude: Iterable[str] = (),
) -> Iterator[Change]:
    """Added, removed and changed entities of one kind, matched by `key`, in the new order then removed."""
    exclude = set(exclude)
    before = {getattr(item, key): item for item in old}
    after = {getattr(item, key): item for item in new}
    for entity_id, item in after.items():
        if entity_id not in before:
            yield Change(entity, f"{prefix}{entity_id}", ChangeKind.ADDED)
            continue
        fields = _field_changes(_json(before[entity_id], exclude), _json(item, exclude))
        if fields:
            yield Change(entity, f"{prefix}{entity_id}", ChangeKind.CHANGED, fields)
    for entity_id in before:
        if entity_id not in after:
            yield Change(entity, f"{prefix}{entity_id}", ChangeKind.REMOVED)


def _diff_section(entity: str, old: BaseModel | None, new: BaseModel | None) -> Iterator[Change]:
    """A section that occurs once (study, schedule, randomization, blinding)."""
    if old is None and new is None:
        return
    if old is None:
        yield Change(entity, entity, ChangeKind.ADDED)
    elif new is None:
        yield Change(entity, entity, ChangeKind.REMOVED)
    else:
        fields = _field_changes(_json(old, ["visits", "criteria"]), _json(new, ["visits", "criteria"]))
        if fields:
            yield Change(entity, entity, ChangeKind.CHANGED, fields)


def _version_json(version: ConsentVersion) -> dict[str, Any]:
    """A consent version's fields, its texts by language and SHA-256 (the text itself is too long to show)."""
    return {**_json(version, ["texts"]), "texts": {text.language: text.sha256 for text in version.texts}}


def _consent_versions(old: StudyDefinition, new: StudyDefinition) -> Iterator[Change]:
    """Versions added, removed or changed, per document (`ICF 2.0`); a document added or removed is one change."""
    before = {document.id: document for document in old.consent}
    for document in new.consent:
        previous = before.get(document.id)
        if previous is None:
            continue
        old_versions = {v.version: _version_json(v) for v in previous.versions}
        new_versions = {v.version: _version_json(v) for v in document.versions}
        for label, data in new_versions.items():
            if label not in old_versions:
                yield Change("consent_version", f"{document.id} {label}", ChangeKind.ADDED)
            elif fields := _field_changes(old_versions[label], data):
                yield Change("consent_version", f"{document.id} {label}", ChangeKind.CHANGED, fields)
        for label in old_versions:
            if label not in new_versions:
                yield Change("consent_version", f"{document.id} {label}", ChangeKind.REMOVED)


def _instruments(old: StudyDefinition, new: StudyDefinition) -> Iterator[Change]:
    old_instruments = old.questionnaires.instruments if old.questionnaires else ()
    new_instruments = new.questionnaires.instruments if new.questionnaires else ()
    yield from _diff_entities("instrument", old_instruments, new_instruments, exclude=["items"])
    before = {instrument.id: instrument for instrument in old_instruments}
    for instrument in new_instruments:
        if instrument.id in before:
            yield from _diff_entities(
                "instrument_item", before[instrument.id].items, instrument.items, prefix=f"{instrument.id}."
            )


def diff_definitions(old: StudyDefinition, new: StudyDefinition) -> StudyDiff:
    """Everything that differs between two definitions, entity by entity."""
    changes: list[Change] = [
        *_diff_section("study", old.study, new.study),
        *_diff_entities("site", old.sites, new.sites),
        *_diff_entities("arm", old.arms, new.arms),
        *_diff_entities("epoch", old.epochs, new.epochs),
        *_diff_entities("codelist", old.codelists, new.codelists),
        *_diff_section("schedule", old.schedule, new.schedule),
        *_diff_entities("visit", old.schedule.visits, new.schedule.visits),
        *_diff_entities("form", old.forms, new.forms, exclude=["items"]),
    ]
    old_forms = {form.id: form for form in old.forms}
    for form in new.forms:
        previous = old_forms.get(form.id)
        if previous is not None:
            changes += _diff_entities("item", previous.items, form.items, prefix=f"{form.id}.")
    changes += _diff_entities("edit_check", old.edit_checks, new.edit_checks)
    old_criteria = old.eligibility.criteria if old.eligibility else ()
    new_criteria = new.eligibility.criteria if new.eligibility else ()
    changes += _diff_section("eligibility", old.eligibility, new.eligibility)
    changes += _diff_entities("eligibility_criterion", old_criteria, new_criteria)
    changes += _diff_entities("consent_document", old.consent, new.consent, exclude=["versions"])
    changes += _consent_versions(old, new)
    changes += _instruments(old, new)
    changes += _diff_section("randomization", old.randomization, new.randomization)
    changes += _diff_section("supply", old.supply, new.supply)
    changes += _diff_section("blinding", old.blinding, new.blinding)
    changes += _diff_section("kris", old.kris, new.kris)
    return StudyDiff(old.study.protocol_version, new.study.protocol_version, tuple(changes))
