"""What reconciliation decides about one subject: every discrepancy that holds now, against those already open.

Pure: the state (`SubjectLabs`) comes from the reconcile read model and the events of the batch at hand, the
protocol and the day are passed in. `decide` raises what is newly wrong and resolves what holds again;
`decide_missing` does the same for missing samples, which only the passing of time (a sweep) can raise.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

from trialstack.protocol.definition import StudyDefinition
from trialstack.reconcile import checks
from trialstack.reconcile import events as ev
from trialstack.reconcile.checks import CentralResult, Discrepancy, LocalValue, SubjectFacts
from trialstack.reconcile.events import DiscrepancyKind

_RESOLVED = {
    DiscrepancyKind.SAMPLE_OUT_OF_WINDOW: "The sample's collection date now falls within the visit's window.",
    DiscrepancyKind.SUBJECT_NOT_ELIGIBLE_FOR_SAMPLES: "The subject's status and consent on record now cover the "
    "sample's collection date.",
    DiscrepancyKind.LOCAL_CENTRAL_MISMATCH: "The local and central values now agree within the tolerance (or one "
    "of them is no longer on record).",
    DiscrepancyKind.SAMPLE_MISSING: "A central sample for the visit has arrived (or the visit date no longer makes "
    "it overdue).",
}


@dataclass(frozen=True)
class SubjectLabs:
    """Everything reconcile follows of one subject. `results` are in the order they arrived (a later result for the
    same visit and test supersedes an earlier one); `local` is keyed by (form instance, item)."""

    subject_id: str
    facts: SubjectFacts | None = None
    results: tuple[CentralResult, ...] = ()
    local: Mapping[tuple[str, str], LocalValue] = field(default_factory=lambda: MappingProxyType({}))
    open: Mapping[str, Discrepancy] = field(default_factory=lambda: MappingProxyType({}))

    def current_results(self, definition: StudyDefinition) -> list[CentralResult]:
        """The latest central result per (visit, test)."""
        latest: dict[tuple[str | None, str], CentralResult] = {}
        for result in self.results:
            if checks.is_central(definition, result.source):
                latest[(result.visit, result.test)] = result
        return list(latest.values())

    def has_sample_for(self, visit_id: str, definition: StudyDefinition) -> bool:
        return any(
            r.visit is not None and checks.visit_id_of(r.visit) == visit_id and checks.is_central(definition, r.source)
            for r in self.results
        )


def find_discrepancies(subject: SubjectLabs, definition: StudyDefinition) -> dict[str, Discrepancy]:
    """Every discrepancy the subject's central results show now (missing samples aside: see `decide_missing`)."""
    labs = definition.labs
    if labs is None:
        return {}
    found: dict[str, Discrepancy] = {}
    for result in subject.current_results(definition):
        test = labs.test(result.test)
        local = None
        if test is not None and test.local_item is not None and result.visit is not None:
            form_id, item_id = test.local_item.split(".")
            local = subject.local.get((f"{result.visit}.{form_id}", item_id))
        for discrepancy in (
            checks.out_of_window(result, subject.facts, definition),
            checks.not_eligible(result, subject.facts, definition),
            checks.local_mismatch(result, local, definition),
        ):
            if discrepancy is not None:
                found[discrepancy.discrepancy_id] = discrepancy
    return found


def find_missing(subject: SubjectLabs, definition: StudyDefinition, today: date) -> dict[str, Discrepancy]:
    """The expected samples of the subject that are overdue on `today`."""
    labs = definition.labs
    if labs is None or subject.facts is None:
        return {}
    found: dict[str, Discrepancy] = {}
    for visit_id in labs.expected.visits:
        missing = checks.missing_sample(
            subject.facts, visit_id, subject.has_sample_for(visit_id, definition), definition, today
        )
        if missing is not None:
            found[missing.discrepancy_id] = missing
    return found


def _found(discrepancy: Discrepancy, study_version: str) -> ev.ReconciliationDiscrepancyFound:
    return ev.ReconciliationDiscrepancyFound(
        discrepancy_id=discrepancy.discrepancy_id, kind=discrepancy.kind, subject_id=discrepancy.subject_id,
        site_id=discrepancy.site_id, visit=discrepancy.visit, test=discrepancy.test, form=discrepancy.form,
        item=discrepancy.item, detail=discrepancy.detail, addressed_to=discrepancy.addressed_to,
        sources=list(discrepancy.sources), study_version=study_version,
    )  # fmt: skip


def _resolved(discrepancy: Discrepancy, study_version: str) -> ev.ReconciliationDiscrepancyResolved:
    return ev.ReconciliationDiscrepancyResolved(
        discrepancy_id=discrepancy.discrepancy_id, kind=discrepancy.kind, subject_id=discrepancy.subject_id,
        site_id=discrepancy.site_id, visit=discrepancy.visit, test=discrepancy.test, form=discrepancy.form,
        item=discrepancy.item, detail=_RESOLVED[discrepancy.kind], addressed_to=discrepancy.addressed_to,
        sources=list(discrepancy.sources), study_version=study_version,
    )  # fmt: skip


def decide(
    subject: SubjectLabs,
    definition: StudyDefinition,
    study_version: str,
    scope: Collection[tuple[str, str]] | None = None,
) -> list[ev.DiscrepancyFields]:
    """Raise each discrepancy found now that is not open; resolve each open one that no longer holds.

    An open missing sample is resolved here only when a sample for its visit has arrived: whether one is still
    missing is the sweep's to decide (it depends on the day). `scope`: the (visit, test) samples the state holds
    the results of (None: all of the subject's); an open discrepancy outside it is left alone, not resolved.
    """
    found = find_discrepancies(subject, definition)
    decided: list[ev.DiscrepancyFields] = [_found(d, study_version) for i, d in sorted(found.items())
                                           if i not in subject.open]  # fmt: skip
    visits = {visit for visit, _test in scope} if scope is not None else set()
    for discrepancy_id, discrepancy in sorted(subject.open.items()):
        if discrepancy_id in found:
            continue
        if (
            scope is not None
            and (discrepancy.visit, discrepancy.test) not in scope
            and not (discrepancy.test is None and discrepancy.visit in visits)
        ):
            continue
        waiting = discrepancy.visit is None or not subject.has_sample_for(discrepancy.visit, definition)
        if discrepancy.kind is DiscrepancyKind.SAMPLE_MISSING and waiting:
            continue
        decided.append(_resolved(discrepancy, study_version))
    return decided


def decide_missing(
    subject: SubjectLabs, definition: StudyDefinition, study_version: str, today: date
) -> list[ev.DiscrepancyFields]:
    """The sweep's decision for one subject: raise each sample overdue on `today`, resolve each open missing sample
    that is no longer overdue (arrived, or the visit date was corrected)."""
    found = find_missing(subject, definition, today)
    decided: list[ev.DiscrepancyFields] = [_found(d, study_version) for i, d in sorted(found.items())
                                           if i not in subject.open]  # fmt: skip
    decided += [
        _resolved(d, study_version)
        for i, d in sorted(subject.open.items())
        if d.kind is DiscrepancyKind.SAMPLE_MISSING and i not in found
    ]
    return decided
