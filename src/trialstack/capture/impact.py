"""The impact of an amendment on the data already captured: which subjects and forms each change touches,
and who must re-consent before their next visit. Read-only: it reads the capture read models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from trialstack.capture.readmodel import form_table, item_table, subject_table, visit_table
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.diff import Change, ChangeKind, StudyDiff

ACTIVE = ("screening", "enrolled")


@dataclass(frozen=True)
class ChangeImpact:
    change: Change
    subjects: tuple[str, ...]
    forms: tuple[str, ...]
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            **self.change.to_json(),
            "subjects": list(self.subjects),
            "forms": list(self.forms),
            "note": self.note,
        }


@dataclass(frozen=True)
class AmendmentImpact:
    changes: tuple[ChangeImpact, ...] = ()
    reconsent: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"impact": [c.to_json() for c in self.changes], "must_reconsent": list(self.reconsent)}


def _subjects(connection: Connection, study_id: str, statuses: tuple[str, ...] | None = None) -> list[str]:
    statement = select(subject_table.c.subject_id).where(subject_table.c.study_id == study_id)
    if statuses is not None:
        statement = statement.where(subject_table.c.status.in_(statuses))
    return [str(r[0]) for r in connection.execute(statement.order_by(subject_table.c.subject_id))]


def _form_instances(
    connection: Connection, study_id: str, form_id: str, item_id: str | None = None
) -> list[tuple[str, str]]:
    if item_id is None:
        statement = select(form_table.c.subject_id, form_table.c.form).where(
            form_table.c.study_id == study_id, form_table.c.form_id == form_id
        )
    else:
        statement = select(item_table.c.subject_id, item_table.c.form).where(
            item_table.c.study_id == study_id,
            item_table.c.item == item_id,
            item_table.c.form.like(f"%{form_id}%"),
        )
    rows = [(str(s), str(f)) for s, f in connection.execute(statement)]
    return sorted({(s, f) for s, f in rows if form_id in f.split(".")})


def _visit_subjects(connection: Connection, study_id: str, visit_id: str) -> list[str]:
    statement = select(visit_table.c.subject_id).where(
        visit_table.c.study_id == study_id, visit_table.c.visit_id == visit_id
    )
    return sorted({str(r[0]) for r in connection.execute(statement)})


def _reconsent(
    connection: Connection, study_id: str, document_id: str, label: str, old: StudyDefinition, new: StudyDefinition
) -> tuple[list[str], str]:
    """Subjects on study at the sites a new version asking for re-consent covers (epochs narrow it at publication)."""
    after = new.consent_document(document_id)
    added = after.version(label) if after is not None and old.consent_document(document_id) is not None else None
    scope = after.reconsent_of(added) if after is not None and added is not None else None
    if added is None or scope is None:
        return [], "no new version asks for re-consent: subjects sign the version in force when they consent"
    statement = select(subject_table.c.subject_id, subject_table.c.site_id).where(
        subject_table.c.study_id == study_id, subject_table.c.status.in_(ACTIVE)
    )
    covered = [
        str(subject)
        for subject, site in connection.execute(statement.order_by(subject_table.c.subject_id))
        if added.applies_at(str(site)) and (not scope.sites or site in scope.sites)
    ]  # fmt: skip
    epochs = sorted(scope.epochs)
    where = f" (only those whose last visit is in {', '.join(epochs)})" if epochs else ""
    return covered, f"subjects who consented to an earlier version must sign the new one before their next visit{where}"


def amendment_impact(
    connection: Connection, study_id: str, diff: StudyDiff, old: StudyDefinition, new: StudyDefinition
) -> AmendmentImpact:
    """Each change with the subjects and form instances it touches in the captured data."""
    impacts: list[ChangeImpact] = []
    reconsent: set[str] = set()
    for change in diff.changes:
        subjects: list[str] = []
        forms: list[tuple[str, str]] = []
        note = ""
        if change.entity == "item":
            form_id, item_id = change.id.split(".", 1)
            forms = _form_instances(connection, study_id, form_id, item_id)
            note = "saved values of this item are kept; new entries follow the new definition"
        elif change.entity == "form" and change.kind is not ChangeKind.ADDED:
            forms = _form_instances(connection, study_id, change.id)
            note = "form instances with data"
        elif change.entity == "edit_check":
            check = next((c for c in (*new.edit_checks, *old.edit_checks) if c.id == change.id), None)
            if check is not None:
                forms = _form_instances(connection, study_id, check.form)
            note = "re-evaluated on the next save of each form instance"
        elif change.entity == "visit":
            done = _visit_subjects(connection, study_id, change.id)
            active = _subjects(connection, study_id, ACTIVE)
            subjects = sorted(set(done) | set(active)) if change.kind is not ChangeKind.ADDED else active
            note = "visits already dated keep their date; windows apply to visits not yet done"
        elif change.entity == "eligibility_criterion":
            subjects = _subjects(connection, study_id, ("screening",))
            note = "subjects still in screening are assessed against the new criteria"
        elif change.entity == "consent_version" and change.kind is ChangeKind.ADDED:
            document_id, label = change.id.split(" ", 1)
            subjects, note = _reconsent(connection, study_id, document_id, label, old, new)
            reconsent |= set(subjects)
        else:
            continue
        impacts.append(
            ChangeImpact(
                change,
                tuple(sorted(set(subjects) | {s for s, _ in forms})),
                tuple(f"{s}:{f}" for s, f in forms),
                note,
            )
        )
    return AmendmentImpact(tuple(impacts), tuple(sorted(reconsent)))
