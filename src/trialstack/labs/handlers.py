"""Command handlers of labs: look up what a command needs, call the pure model, append in one unit of work.

`receive_results` is the inbound feed (a file, an HL7 message, a FHIR bundle): one unit of work for the whole
command, flushed every `BATCH` results so that a million-row file keeps its memory flat; per batch one lookup of
the subjects, mapped lab ids, earlier versions and baselines it names. A file with refused rows writes nothing
(the caller rolls the unit back when `receive_results` raises) unless the command accepts the valid rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.labs import commands as cmd
from trialstack.labs import events as ev
from trialstack.labs import readmodel as rm
from trialstack.labs.catalog import LabCatalog, compile_catalog
from trialstack.labs.model import (
    ALERTS,
    IDENTIFIERS,
    RESULTS,
    TRIAGE,
    Decided,
    ResultContext,
    RowRefused,
    decide_result,
    external_id,
    ledger_source,
    observation_from,
    result_id,
)
from trialstack.ledger.envelope import NewEvent, RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import Labs
from trialstack.protocol.readmodel import version_in_force
from trialstack.protocol.version import StudyVersion
from trialstack.standards.lab_results import LabObservation, LabParseError

BATCH = 1_000
MAX_REPORTED_ERRORS = 200


@dataclass
class LabImportReport:
    """What one command did with a laboratory's results (the CLI and API print it; `--json` returns it)."""

    source: str
    rows: int = 0
    received: int = 0
    corrected: int = 0
    repeated: int = 0
    unmatched: int = 0
    graded: int = 0
    alerts: int = 0
    refused: int = 0
    errors: list[RowRefused] = field(default_factory=list)
    committed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "rows": self.rows, "received": self.received, "corrected": self.corrected,
            "repeated": self.repeated, "unmatched": self.unmatched, "graded": self.graded, "alerts": self.alerts,
            "refused": self.refused, "committed": self.committed,
            "errors": [{"location": e.location, "field": e.field, "reason": e.reason} for e in self.errors],
        }  # fmt: skip


class LabImportRefused(InvalidInput):
    """Rows were refused and the command did not accept the valid ones: nothing is written."""

    code = "lab-import-refused"

    def __init__(self, report: LabImportReport) -> None:
        first = report.errors[0] if report.errors else None
        where = f": first at {first.location}, {first.field}: {first.reason}" if first is not None else ""
        super().__init__(f"{report.refused} of {report.rows} results refused, nothing written{where}")
        self.report = report


def study_labs(uow: UnitOfWork, study_id: str) -> tuple[StudyVersion, Labs]:
    version = version_in_force(uow.connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    labs = version.definition.labs
    if labs is None:
        raise DomainRuleViolation(f"study {study_id} declares no laboratory tests (a `labs:` section)", field="study")
    return version, labs


_CATALOGS: dict[tuple[str, str], LabCatalog] = {}


def catalog_of(version: StudyVersion, labs: Labs, source_id: str) -> LabCatalog:
    """Compiled once per StudyVersion and laboratory (a handful per process: a study has few versions)."""
    key = (version.hash, source_id)
    if key not in _CATALOGS:
        _CATALOGS[key] = compile_catalog(labs, source_id)
    return _CATALOGS[key]


def _refused(error: LabParseError) -> RowRefused:
    return RowRefused(error.location, error.field, error.reason)


def receive_results(
    uow: UnitOfWork,
    study_id: str,
    command: cmd.ReceiveLabResults,
    progress: Callable[[int], None] | None = None,
) -> LabImportReport:
    """Take a laboratory's results into the ledger (see the module docstring). Raises LabImportRefused."""
    version, labs = study_labs(uow, study_id)
    if labs.source(command.source) is None:
        known = ", ".join(source.id for source in labs.sources)
        raise NotFound(f"unknown laboratory '{command.source}' (the study's labs.sources: {known})", field="source")
    catalog = catalog_of(version, labs, command.source)
    report = LabImportReport(command.source)
    uow.lock_study(study_id)
    for n, batch in enumerate(_batches(command.observations)):
        if n:
            uow.flush()  # the previous batch: memory stays flat, and the last batch's events are the commit's
        _receive_batch(uow, study_id, version, catalog, batch, report, command.accept_valid)
        if progress is not None:
            progress(len(batch))
    if report.refused and not command.accept_valid:
        raise LabImportRefused(report)
    return report


def _batches(rows: Iterable[LabObservation | LabParseError]) -> Iterator[list[LabObservation | LabParseError]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, BATCH)):
        yield batch


def _refuse(report: LabImportReport, refusal: RowRefused) -> None:
    report.refused += 1
    if len(report.errors) < MAX_REPORTED_ERRORS:
        report.errors.append(refusal)


def _receive_batch(
    uow: UnitOfWork,
    study_id: str,
    version: StudyVersion,
    catalog: LabCatalog,
    batch: list[LabObservation | LabParseError],
    report: LabImportReport,
    accept_valid: bool,
) -> None:
    connection, source = uow.connection, catalog.source
    report.rows += len(batch)
    refusals: list[tuple[int, RowRefused]] = []
    seen: set[str] = set()  # repeats within the batch; an earlier batch's are in the ledger (this transaction's)
    observations: list[tuple[int, LabObservation]] = []
    for index, row in enumerate(batch):
        if isinstance(row, LabParseError):
            refusals.append((index, _refused(row)))
        elif (external := external_id(row)) in seen:
            report.repeated += 1
        else:
            seen.add(external)
            observations.append((index, row))
    ledger = ledger_source(study_id, source)
    stored = uow.stored_external_ids([(ledger, external_id(o)) for _, o in observations])
    report.repeated += sum(1 for _, o in observations if (ledger, external_id(o)) in stored)
    observations = [(n, o) for n, o in observations if (ledger, external_id(o)) not in stored]
    patient_ids = {o.patient_id for _, o in observations}
    mapped = rm.mapped_subjects(connection, study_id, source, patient_ids)
    subjects = rm.subject_facts(connection, study_id, {mapped.get(p, p) for p in patient_ids})
    priors = rm.prior_results(connection, study_id, {result_id(source, o) for _, o in observations})
    tested = {(mapped.get(o.patient_id, o.patient_id), test.id) for _, o in observations
              if (test := catalog.test_for(o.test_code)) is not None}  # fmt: skip
    baselines = rm.baselines(connection, study_id, tested)
    appends: dict[tuple[str, str], list[NewEvent]] = {}
    for index, observation in observations:
        subject_id = mapped.get(observation.patient_id, observation.patient_id)
        subject = subjects.get(subject_id)
        context = ResultContext(
            study_id, source, version.hash, version.definition, catalog, subject,
            "mapping" if observation.patient_id in mapped else "screening number",
            priors.get(result_id(source, observation)), baselines.get(subject_id, {}),
        )  # fmt: skip
        decided = decide_result(context, observation)
        if isinstance(decided, RowRefused):
            refusals.append((index, decided))
            continue
        _count(report, decided)
        if subject is not None:
            appends.setdefault((RESULTS, f"{study_id}/{subject.subject_id}"), []).extend(decided.results)
        for stream, event in decided.triage:
            appends.setdefault((TRIAGE, stream), []).append(event)
        for stream, event in decided.alerts:
            appends.setdefault((ALERTS, stream), []).append(event)
    for _, refusal in sorted(refusals, key=lambda pair: pair[0]):
        _refuse(report, refusal)
    if report.refused and not accept_valid:
        return
    alerts = [(stream, events) for (stream_type, stream), events in appends.items() if stream_type == ALERTS]
    with uow.inserted_together():  # the batch's results were looked up above: one INSERT for all of them
        for (stream_type, stream_id), events in appends.items():
            if stream_type != ALERTS:
                uow.append(study_id, stream_type, stream_id, events, expected_version=None, checked=True)
    for stream_id, events in alerts:  # rare; each looked up by its own append (a repeat is a no-op)
        uow.append(study_id, ALERTS, stream_id, events, expected_version=None)


def _count(report: LabImportReport, decided: Decided) -> None:
    if decided.kind == "unmatched":
        report.unmatched += 1
        return
    if decided.kind == "corrected":
        report.corrected += 1
    else:
        report.received += 1
    report.graded += sum(1 for e in decided.results if e.event_type == ev.LabValueGraded.__name__)
    report.alerts += len(decided.alerts)


def _triage_state(uow: UnitOfWork, study_id: str, triage_id: str) -> tuple[dict[str, Any], int]:
    stream = f"{study_id}/{triage_id}"
    events = uow.read_stream(TRIAGE, stream)
    if not events:
        raise NotFound(f"no triaged lab result {triage_id}", field="triage_id")
    if any(e.event_type in (ev.LabResultAssigned.__name__, ev.LabResultRejected.__name__) for e in events):
        raise DomainRuleViolation(f"lab result {triage_id} has already left triage", field="triage_id")
    return events[0].payload, events[-1].stream_version


def assign_triaged(uow: UnitOfWork, study_id: str, command: cmd.AssignLabResult) -> list[RecordedEvent]:
    """A data manager's assignment: the result is processed as if it had matched this subject (and visit)."""
    if not command.reason.strip():
        raise InvalidInput("say why the result belongs to this subject", field="reason")
    unmatched, stream_version = _triage_state(uow, study_id, command.triage_id)
    version, labs = study_labs(uow, study_id)
    source = unmatched["source"]
    catalog = catalog_of(version, labs, source)
    subject = rm.subject_facts(uow.connection, study_id, [command.subject_id]).get(command.subject_id)
    if subject is None:
        raise NotFound(f"no subject {command.subject_id} in study {study_id}", field="subject_id")
    if command.visit is not None and version.definition.visit(command.visit.split(".")[0]) is None:
        raise NotFound(f"no visit {command.visit} in the schedule", field="visit")
    observation = observation_from(unmatched["observation"])
    rid = result_id(source, observation)
    context = ResultContext(
        study_id, source, version.hash, version.definition, catalog, subject, "triage",
        rm.prior_results(uow.connection, study_id, [rid]).get(rid),
        rm.baselines(uow.connection, study_id, [(subject.subject_id, t.id) for t in labs.tests]).get(
            subject.subject_id, {}
        ),
        command.visit,
    )  # fmt: skip
    decided = decide_result(context, observation)
    if isinstance(decided, RowRefused):
        raise InvalidInput(f"{decided.location}, {decided.field}: {decided.reason}", field=decided.field)
    if decided.kind == "unmatched":
        reason = decided.triage[0][1].payload["reason"]
        raise DomainRuleViolation(f"{reason}: choose the visit the sample belongs to", field="visit")
    assignment = {"triage_id": command.triage_id, "subject_id": subject.subject_id, "visit": command.visit,
                  "remember": command.remember}  # fmt: skip
    assigned = NewEvent(ev.LabResultAssigned.__name__, assignment, reason=command.reason)
    recorded = uow.append(study_id, TRIAGE, f"{study_id}/{command.triage_id}", [assigned],
                          expected_version=stream_version)  # fmt: skip
    if command.remember:
        mapped = NewEvent(ev.LabIdentifierMapped.__name__, {"source": source, "patient_id": unmatched["patient_id"],
                          "subject_id": subject.subject_id}, reason=command.reason)  # fmt: skip
        recorded += uow.append(study_id, IDENTIFIERS, f"{study_id}/{source}", [mapped], expected_version=None)
    recorded += uow.append(study_id, RESULTS, f"{study_id}/{subject.subject_id}", decided.results,
                           expected_version=None)  # fmt: skip
    for stream, event in decided.alerts:
        recorded += uow.append(study_id, ALERTS, stream, [event], expected_version=None)
    return recorded


def reject_triaged(uow: UnitOfWork, study_id: str, command: cmd.RejectLabResult) -> list[RecordedEvent]:
    if not command.reason.strip():
        raise InvalidInput("a rejected lab result needs the reason", field="reason")
    _unmatched, stream_version = _triage_state(uow, study_id, command.triage_id)
    rejected = NewEvent(ev.LabResultRejected.__name__, {"triage_id": command.triage_id, "reason": command.reason},
                        reason=command.reason)  # fmt: skip
    return uow.append(study_id, TRIAGE, f"{study_id}/{command.triage_id}", [rejected], expected_version=stream_version)


def _alert_state(uow: UnitOfWork, study_id: str, alert_id: str) -> tuple[dict[str, Any], int]:
    events = uow.read_stream(ALERTS, f"{study_id}/{alert_id}")
    if not events:
        raise NotFound(f"no lab alert {alert_id}", field="alert_id")
    if len(events) > 1:
        raise DomainRuleViolation(f"lab alert {alert_id} is already {events[-1].event_type[8:].lower()}")
    return events[0].payload, events[-1].stream_version


def confirm_alert(uow: UnitOfWork, study_id: str, command: cmd.ConfirmLabAlert) -> list[RecordedEvent]:
    """The investigator confirms the proposed adverse event (onset: the collection date)."""
    raised, stream_version = _alert_state(uow, study_id, command.alert_id)
    term = (command.term or raised["proposed_term"]).strip()
    if not term:
        raise InvalidInput("the adverse event needs a term", field="term")
    confirmed = NewEvent(ev.LabAlertConfirmed.__name__, {
        "alert_id": command.alert_id, "subject_id": raised["subject_id"], "term": term, "grade": raised["grade"],
        "onset": (raised["collected_at"] or "")[:10] or None,
    })  # fmt: skip
    return uow.append(study_id, ALERTS, f"{study_id}/{command.alert_id}", [confirmed], expected_version=stream_version)


def dismiss_alert(uow: UnitOfWork, study_id: str, command: cmd.DismissLabAlert) -> list[RecordedEvent]:
    if not command.reason.strip():
        raise InvalidInput("say why the value is not an adverse event", field="reason")
    raised, stream_version = _alert_state(uow, study_id, command.alert_id)
    dismissal = {"alert_id": command.alert_id, "subject_id": raised["subject_id"], "reason": command.reason}
    dismissed = NewEvent(ev.LabAlertDismissed.__name__, dismissal, reason=command.reason)
    return uow.append(study_id, ALERTS, f"{study_id}/{command.alert_id}", [dismissed], expected_version=stream_version)


def alert_site(uow: UnitOfWork, study_id: str, alert_id: str) -> str:
    """The site of an alert's subject, for the adapter's site-scoped authorization."""
    found = rm.alert(uow.connection, study_id, alert_id)
    if found is None:
        raise NotFound(f"no lab alert {alert_id}", field="alert_id")
    return str(found["site_id"])
