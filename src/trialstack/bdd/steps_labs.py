"""Steps about the central laboratory: results received by HL7 message or CSV file, triage, alerts, reconciliation.

Who acts: the central laboratory is a machine feed, not one of the scenario's `{actor}`s: its deliveries are
received as `feed:<laboratory>` (a system actor, no sign-in), exactly as the HL7 listener and the file drop do,
through the standards parsers (`parse_oru`, `read_csv` with the default mapping) and `labs.handlers`. The data
manager triages (`lab.triage`), the investigator reviews alerts (`lab.alert.review`), and the system sweeps for
missing samples as `system:reconcile`.

Messages and files are built from the scenario's tables: an HL7 ORU^R01 stamps MSH-7 with the scenario's clock
(a later stamp for a correction), its accession is derived from the subject and the collection date, and its
PID carries the sex and date of birth the casebook has. A file is written to a temporary folder under the name the
scenario gives, and its locations are reported by that name (the ledger stays the same from run to run).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from trialstack.bdd.errors import ExpectationFailed, ReferenceProblem
from trialstack.bdd.features import DataTable
from trialstack.bdd.registry import LIBRARY
from trialstack.bdd.world import Refusal, World
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.errors import TrialStackError
from trialstack.identity.policy import Action
from trialstack.labs import commands as cmd
from trialstack.labs import handlers as labs
from trialstack.labs import readmodel as rm
from trialstack.ledger import store
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import Labs, LabTest
from trialstack.reconcile.handlers import SYSTEM_RECONCILE, sweep_missing_samples
from trialstack.standards.hl7_oru import parse_oru
from trialstack.standards.lab_csv import read_csv
from trialstack.standards.lab_results import LabObservation, LabParseError

LABORATORY = "Central laboratory"
COLLECTED_AT = time(8, 0)
STATUSES = {"F": "F", "FINAL": "F", "C": "C", "CORRECTED": "C"}
KINDS = {
    "local and central mismatch": "RC-LOCAL",
    "mismatch between local and central values": "RC-LOCAL",
    "missing sample": "RC-MISSING",
    "sample out of window": "RC-WINDOW",
    "sample from an unconsented subject": "RC-CONSENT",
}
"""The discrepancy kinds of `reconcile.events.DiscrepancyKind`, as a scenario says them, to their query ids."""
LAB_EVENTS = frozenset({"LabResultReceived", "LabResultCorrected", "LabResultUnmatched", "LabValueGraded",
                        "LabAlertRaised"})  # fmt: skip
T = TypeVar("T")
step = LIBRARY.step


# the study's laboratory --------------------------------------------------------------------------------------
def _labs(world: World) -> Labs:
    labs = world.rules.definition.labs
    if labs is None:
        raise ReferenceProblem("the study declares no laboratory tests (a `labs:` section)")
    return labs


def _central(world: World) -> str:
    central = [source.id for source in _labs(world).sources if source.central]
    if not central:
        raise ReferenceProblem("the study declares no central laboratory (labs.sources with central: true)")
    return central[0]


def _test(world: World, text: str) -> LabTest:
    """A study test by its id (`K`), its name (`Potassium`) or one of its LOINC codes (`2823-3`)."""
    wanted = text.strip().casefold()
    tests = _labs(world).tests
    found = [t for t in tests if wanted in {t.id.casefold(), t.name.casefold(), *(c.casefold() for c in t.loinc)}]
    if len(found) != 1:
        known = ", ".join(f"{t.id} ({t.name})" for t in tests)
        raise ReferenceProblem(f'"{text}" is not one test of the study: {known}')
    return found[0]


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        return None


def _same_value(stored: str | None, wanted: str) -> bool:
    if stored is None:
        return False
    a, b = _decimal(stored), _decimal(wanted)
    return a == b if a is not None and b is not None else stored.strip() == wanted.strip()


# receiving ---------------------------------------------------------------------------------------------------
def _receive(world: World, what: str, observations: list[LabObservation | LabParseError], file: str = "") -> None:
    """The laboratory's delivery through `labs.receive_results`, in one committed unit of work, as the feed."""
    source = _central(world)
    command = cmd.ReceiveLabResults(source, observations)
    before = len(world.step_events)
    try:
        with world._unit_of_work(Actor(f"feed:{source}", "system")) as uow:
            report = labs.receive_results(uow, world.study_id, command)
            committed = uow.commit()
    except TrialStackError as error:
        world.platform.cache.clear()
        world.lab_appended = ()
        report_errors = getattr(getattr(error, "report", None), "errors", None) or []
        if report_errors:
            first = report_errors[0]
            reason = f"{first.field}: {first.reason}" if first.field else first.reason
            world.lab_refusal = (file, first.location, reason)
        else:
            world.lab_refusal = (file, getattr(error, "location", ""), error.message)
        world._refused(Refusal(what, error.message, error.code))
        return
    world._observe(report, committed)
    world.lab_refusal = None
    world.lab_appended = tuple(event.event_type for event in world.step_events[before:])


def _system(world: World, actor: Actor, what: str, handler: Callable[[UnitOfWork], T]) -> T | None:
    """As `World.command`, for the system (no sign-in): reconciliation's sweep."""
    try:
        with world._unit_of_work(actor) as uow:
            result = handler(uow)
            committed = uow.commit()
    except TrialStackError as error:
        world.platform.cache.clear()
        world._refused(Refusal(what, error.message, error.code))
        return None
    world._observe(result, committed)
    return result


def _parsed(message: str, where: str) -> list[LabObservation | LabParseError]:
    try:
        return list(parse_oru(message, where))
    except LabParseError as error:
        return [error]


# HL7 messages ------------------------------------------------------------------------------------------------
def _stamp(world: World, after: str | None = None) -> str:
    """MSH-7 from the scenario's clock; later than `after` (a correction is a later report of the result)."""
    now = world.clock.now()
    if after is not None:
        previous = datetime.strptime(after, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        now = max(now, previous + timedelta(minutes=1))
    return now.strftime("%Y%m%d%H%M%S")


def _accession(patient: str, collected: date) -> str:
    return f"MCL{patient.replace('-', '').upper()}{collected:%Y%m%d}"


def _patient_segment(world: World, patient: str, source: str) -> str:
    """PID with the sex and date of birth the casebook has for this subject (none for a stranger's number)."""
    sex, born = "", ""
    try:
        casebook = world.casebook(patient)
    except TrialStackError:
        casebook = None
    if casebook is not None and casebook.exists:
        for form in casebook.forms.values():
            for item_id, state in form.items.items():
                if item_id == "SEX" and state.value:
                    sex = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F"}.get(state.value.strip().upper(), "U")
                elif item_id == "BRTHDAT" and state.value and len(state.value) == 10:
                    born = state.value.replace("-", "")
    return f"PID|1||{patient}^^^{source}^PI||||{born}|{sex}"


def _message(world: World, header: tuple[str, str, str], observations: list[tuple[LabTest, str, str, str]],
             stamp: str, status: str) -> str:  # fmt: skip
    """An ORU^R01: MSH (stamp), PID, ORC, OBR (accession, collection), one OBX per observation."""
    pid, accession, collected = header
    source = _central(world)
    segments = [
        f"MSH|^~\\&|{source}-LIS|{source}|TRIALSTACK|{world.study_id}|{stamp}||ORU^R01^ORU_R01|{accession}-{stamp}|P|"
        "2.5.1",
        pid,
        "ORC|RE",
        f"OBR|1||{accession}^{source}|PANEL^Central laboratory panel|||{collected}||||||||||||||{stamp}|||{status}",
    ]
    for n, (test, value, unit, result_status) in enumerate(observations, 1):
        code, system = (test.loinc[0], "LN") if test.loinc else (test.id, "L")
        kind = "NM" if _decimal(value) is not None else "ST"
        segments.append(f"OBX|{n}|{kind}|{code}^{test.name}^{system}||{value}|{unit}|||||{result_status}|||{collected}")
    return "\r".join(segments)


def _status(text: str | None) -> str:
    status = STATUSES.get((text or "F").strip().upper())
    if status is None:
        raise ReferenceProblem(f'result status "{text}": F (final) or C (corrected)')
    return status


def _send(world: World, message: str) -> None:
    world.lab_message = message
    _receive(world, "the laboratory's message", _parsed(message, "message 1"))


@step(
    "the central laboratory sends an HL7 result message for subject {string} collected on {date}:",
    example=(
        'When the central laboratory sends an HL7 result message for subject "0101-001" collected on 2026-01-05:\n'
        "  | test      | value | unit   |\n"
        "  | Potassium | 5.4   | mmol/L |\n"
        "  | SODIUM    | 139   | mmol/L |"
    ),
    topic=LABORATORY,
    table=("test", "value", "unit"),
    optional_columns=("status",),
)
def sends_hl7(world: World, patient: str, collected: str, table: DataTable) -> None:
    """The central laboratory sends an HL7 v2.5.1 ORU^R01 with one OBX per row, received as its feed.

    A test is named by its study id, its name or a LOINC code (the message carries the test's first LOINC code);
    `status` is F (final, the default) or C (corrected). MSH-7 is the scenario's clock; the accession is derived
    from the subject number and the collection date (sampled at 08:00 that day), and the story reaches that day.
    The message is parsed by `parse_oru` and received by `labs.receive_results`: a result is matched to the subject
    by its number and to the visit by the collection date, converted, flagged and graded; a number no subject has
    waits in triage. A refused message is an outcome for the next step to check.
    """
    world.reach(collected)
    day = date.fromisoformat(collected)
    source = _central(world)
    rows = [
        (_test(world, row["test"]), row["value"].strip(), row["unit"].strip(), _status(row.get("status")))
        for row in (dict(zip((h.strip().lower() for h in table.header), r, strict=True)) for r in table.rows)
    ]
    header = (
        _patient_segment(world, patient, source),
        _accession(patient, day),
        datetime.combine(day, COLLECTED_AT).strftime("%Y%m%d%H%M"),
    )
    status = "C" if rows and all(r[3] == "C" for r in rows) else "F"
    _send(world, _message(world, header, rows, _stamp(world), status))


def _last_message(world: World) -> str:
    if world.lab_message is None:
        raise ExpectationFailed(
            "the central laboratory has sent no HL7 message yet",
            expected="an earlier `the central laboratory sends an HL7 result message ...` step",
        )
    return world.lab_message


@step(
    "the central laboratory sends the same message again",
    example="When the central laboratory sends the same message again",
    topic=LABORATORY,
)
def sends_again(world: World) -> None:
    """The laboratory resends its last HL7 message unchanged (same MSH-7, so the same report of each result): a
    repeat the ledger already holds records nothing (each result's source and external id make it a no-op)."""
    _send(world, _last_message(world))


@step(
    "the central laboratory sends a corrected {string} result of {value} {string}",
    example='When the central laboratory sends a corrected "Potassium" result of 5.1 "mmol/L"',
    topic=LABORATORY,
)
def sends_correction(world: World, test_text: str, value: str, unit: str) -> None:
    """The laboratory corrects one result of its last HL7 message: the same subject and accession, OBX-11 C and a
    later MSH-7. The result's value is replaced, with the reason "corrected by the laboratory"."""
    previous = _last_message(world).split("\r")
    msh = previous[0].split("|")
    pid = next(s for s in previous if s.startswith("PID|"))
    obr = next(s for s in previous if s.startswith("OBR|")).split("|")
    header = (pid, obr[3].split("^")[0], obr[7])
    test = _test(world, test_text)
    _send(world, _message(world, header, [(test, value, unit, "C")], _stamp(world, after=msh[6]), "C"))


# CSV files ---------------------------------------------------------------------------------------------------
CSV_COLUMNS = ("patient_id", "test_code", "value", "unit", "collected_at")
CSV_OPTIONAL = ("accession", "status", "version", "sex", "age_years", "visit")


def _located(item: LabObservation | LabParseError, folder: str) -> LabObservation | LabParseError:
    """Report a row by the file's name, not the temporary folder it was written to."""
    if isinstance(item, LabObservation):
        return replace(item, location=item.location.replace(folder, ""))
    return LabParseError(item.location.replace(folder, ""), item.field, item.reason)


def _csv_rows(table: DataTable) -> tuple[list[str], list[list[str]]]:
    header = [h.strip().lower() for h in table.header]
    records = [dict(zip(header, (v.strip() for v in row), strict=True)) for row in table.rows]
    if "accession" not in header:
        header.append("accession")
        for record in records:
            day = _decimal_date(record["collected_at"])
            record["accession"] = _accession(record["patient_id"], day) if day else record["patient_id"]
    return header, [[record[column] for column in header] for record in records]


def _decimal_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


@step(
    "the central laboratory sends a results file {string}:",
    example=(
        'When the central laboratory sends a results file "MCL_20260106.csv":\n'
        "  | patient_id | test_code | value | unit   | collected_at        |\n"
        "  | 0101-001   | CREA      | 88    | umol/L | 2026-01-05T08:00:00 |"
    ),
    topic=LABORATORY,
    table=CSV_COLUMNS,
    optional_columns=CSV_OPTIONAL,
)
def sends_file(world: World, name: str, table: DataTable) -> None:
    """The laboratory delivers a CSV file, one row per result, in its own codes and units (the columns of the
    default mapping; `accession` defaults to one per subject and collection day, `status` to F). The file is read by
    `read_csv` and received as the feed, whole or not at all: when a row is refused nothing of the file is
    recorded, and the refusal (the first refused row's line and reason) is for the next step to check."""
    header, rows = _csv_rows(table)
    with tempfile.TemporaryDirectory(prefix="trialstack-bdd-labs-") as folder:
        path = Path(folder) / name
        with path.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            writer.writerows(rows)
        prefix = f"{folder}/"
        try:
            observations = [_located(item, prefix) for item in read_csv(path)]
        except LabParseError as error:
            observations = [_located(error, prefix)]
    collected = [d for r in table.records() if (d := _decimal_date(r.get("collected_at", ""))) is not None]
    if collected:
        world.reach(max(collected).isoformat())
    _receive(world, f"the results file {name}", observations, file=name)


@step(
    "the results file is refused at {string} because {string}",
    example='Then the results file is refused at "MCL_20260106.csv line 3" because "not a number"',
    topic=LABORATORY,
    inspects_refusal=True,
)
def file_refused(world: World, location: str, reason: str) -> None:
    """The previous results file was refused: its first refused row is at this location (the text is contained in
    it: "line 3") for this reason (contained too, case-insensitive); and nothing of the file is in the ledger."""
    refusal, details = world.refusal, world.lab_refusal
    world.refusal = None
    if refusal is None or details is None:
        raise ExpectationFailed("the results file was accepted", expected=f"refused at {location}", actual="accepted")
    name, where, why = details
    if location.lower() not in where.lower() or reason.lower() not in why.lower():
        raise ExpectationFailed(
            "the results file was refused elsewhere or for another reason",
            expected=f"refused at {location} because {reason}",
            actual=f"refused at {where} because {why}",
        )
    kept = [e for e in _lab_events(world) if str(e.payload.get("location", "")).startswith(name)]
    if name and kept:
        raise ExpectationFailed(
            f"the refused file {name} left events in the ledger",
            expected="nothing recorded",
            actual="; ".join(f"{e.event_type} at {e.payload['location']}" for e in kept[:5]),
        )


@step("nothing new is recorded", example="Then nothing new is recorded", topic=LABORATORY)
def nothing_new(world: World) -> None:
    """The laboratory's last delivery appended no event: every result in it was already recorded as it stands."""
    if world.lab_appended:
        raise ExpectationFailed(
            "the delivery recorded new events", expected="nothing new", actual=", ".join(world.lab_appended)
        )


# results -----------------------------------------------------------------------------------------------------
def _lab_events(world: World) -> list[RecordedEvent]:
    with world.platform.engine.connect() as connection:
        return [e for e in store.iter_study(connection, world.study_id) if e.event_type in LAB_EVENTS]


def _result(world: World, test_text: str) -> dict[str, Any]:
    """The subject's latest central result of the test (by collection time, then arrival)."""
    test, subject = _test(world, test_text), world.require_subject()
    with world.platform.engine.connect() as connection:
        rows = [r for r in rm.results_of_subject(connection, world.study_id, subject) if r["test"] == test.id]
    if not rows:
        raise ExpectationFailed(
            f"subject {subject} has no central {test.name} result", expected=f"a {test.id} result", actual="none"
        )
    return max(rows, key=lambda r: (r["collected_at"] or "", r["received_seq"]))


def _shown(row: dict[str, Any]) -> str:
    flag = f", flagged {row['flag']}" if row["flag"] else ", not flagged"
    grade = f", grade {row['grade']} {row['term']}" if row["grade"] else ""
    return (
        f"{row['value']} {row['unit'] or ''} (sent {row['original_value']} {row['original_unit'] or ''}){flag}{grade}"
    )


def _check_result(world: World, test_text: str, value: str, unit: str, flag: str | bool | None = False) -> None:
    row = _result(world, test_text)
    wrong = not _same_value(row["value"], value) or (row["unit"] or "") != unit
    if flag is not False:
        wrong = wrong or (row["flag"] or None) != flag
    if wrong:
        flagged = "" if flag is False else (f", flagged {flag}" if flag else ", not flagged")
        raise ExpectationFailed(
            f"the subject's central {test_text} result is another", expected=f"{value} {unit}{flagged}",
            actual=_shown(row),
        )  # fmt: skip


@step(
    "the subject's central {string} result is {value} {string}",
    example='Then the subject\'s central "Creatinine" result is 1.00 "mg/dL"',
    topic=LABORATORY,
)
def result_is(world: World, test_text: str, value: str, unit: str) -> None:
    """The subject's latest central result of the test (by id, name or LOINC code), as recorded: converted to the
    study's unit for the test (decimals compared as numbers: 1.0 is 1.00)."""
    _check_result(world, test_text, value, unit)


@step(
    "the subject's central {string} result is {value} {string}, flagged {string}",
    example='Then the subject\'s central "Potassium" result is 5.4 "mmol/L", flagged "H"',
    topic=LABORATORY,
)
def result_is_flagged(world: World, test_text: str, value: str, unit: str, flag: str) -> None:
    """As above, and flagged against the study's reference range: L or H outside the normal range, LL or HH beyond
    a critical limit."""
    _check_result(world, test_text, value, unit, flag)


@step(
    "the subject's central {string} result is {value} {string}, not flagged",
    example='Then the subject\'s central "Sodium" result is 139 "mmol/L", not flagged',
    topic=LABORATORY,
)
def result_is_normal(world: World, test_text: str, value: str, unit: str) -> None:
    """As above, and within the study's reference range (no flag)."""
    _check_result(world, test_text, value, unit, None)


@step(
    "the subject's central {string} result is graded {value} for {string}",
    example='Then the subject\'s central "Potassium" result is graded 3 for "Hyperkalemia"',
    topic=LABORATORY,
)
def result_graded(world: World, test_text: str, grade: str, term: str) -> None:
    """The result's CTCAE v5.0 grade (the highest of its terms) and the term it was graded by."""
    row = _result(world, test_text)
    if str(row["grade"]) != grade.strip() or (row["term"] or "").casefold() != term.casefold():
        raise ExpectationFailed(
            f"the subject's central {test_text} result is graded otherwise",
            expected=f"grade {grade} for {term}",
            actual=f"grade {row['grade']} for {row['term']}" if row["grade"] else "not graded",
        )


@step(
    "the subject's central {string} result was corrected from {value} with the reason {string}",
    example='Then the subject\'s central "Potassium" result was corrected from 5.4 with the reason "corrected by the '
    'laboratory"',
    topic=LABORATORY,
)
def result_corrected(world: World, test_text: str, previous: str, reason: str) -> None:
    """The ledger holds the correction of the result: the value it replaced and the reason for change of its audit
    trail (reason contained, case-insensitive)."""
    test, subject = _test(world, test_text), world.require_subject()
    corrections = [
        e for e in _lab_events(world)
        if e.event_type == "LabResultCorrected" and e.payload["subject_id"] == subject and e.payload["test"] == test.id
    ]  # fmt: skip
    if not any(
        _same_value(e.payload["previous_value"], previous) and reason.lower() in (e.reason or "").lower()
        for e in corrections
    ):
        actual = "; ".join(f"from {e.payload['previous_value']} ({e.reason})" for e in corrections) or "no correction"
        raise ExpectationFailed(
            f"no correction of the {test.id} result from {previous}",
            expected=f'corrected from {previous} with the reason "{reason}"',
            actual=actual,
        )


# alerts ------------------------------------------------------------------------------------------------------
def _alerts(world: World, about: str) -> list[dict[str, Any]]:
    """The subject's laboratory alerts for a CTCAE term or a test (oldest first)."""
    subject, wanted = world.require_subject(), about.strip().casefold()
    with world.platform.engine.connect() as connection:
        rows = [a for a in rm.alerts(connection, world.study_id) if a["subject_id"] == subject]
    tests = {t.id: {t.id.casefold(), t.name.casefold()} for t in _labs(world).tests}
    return [a for a in rows if wanted == a["term"].casefold() or wanted in tests.get(a["test"], set())]


def _alert(world: World, about: str) -> dict[str, Any]:
    found = _alerts(world, about)
    if not found:
        raise ExpectationFailed(f"no laboratory alert for {about}", expected=f"an alert for {about}", actual="none")
    live = [a for a in found if a["status"] == "raised"]
    return (live or found)[-1]


def _alerts_text(world: World) -> str:
    subject = world.require_subject()
    with world.platform.engine.connect() as connection:
        rows = [a for a in rm.alerts(connection, world.study_id) if a["subject_id"] == subject]
    return "; ".join(f"grade {a['grade']} {a['term']} ({a['test']} {a['value']}) {a['status']}" for a in rows) or "none"


@step(
    "a laboratory alert of grade {value} for {string} is raised for the investigator",
    example='Then a laboratory alert of grade 3 for "Hyperkalemia" is raised for the investigator',
    topic=LABORATORY,
)
def alert_raised(world: World, grade: str, about: str) -> None:
    """A result graded at or above the study's alert grade alerted the investigator, proposing an adverse event
    (a CTCAE term, or a test by id or name), and waits for their review."""
    if not any(a["status"] == "raised" and str(a["grade"]) == grade.strip() for a in _alerts(world, about)):
        raise ExpectationFailed(
            f"no grade {grade} laboratory alert for {about} waits for the investigator",
            expected=f"grade {grade} {about} raised",
            actual=_alerts_text(world),
        )


def _review(world: World, who: str, about: str, what: str, handler: Callable[[UnitOfWork, str], object]) -> None:
    alert = _alert(world, about)
    world.command(
        who,
        Action.LAB_ALERT_REVIEW,
        what,
        lambda uow: handler(uow, str(alert["alert_id"])),
        site=str(alert["site_id"]),
    )


@step(
    "the {actor} confirms the laboratory alert for {string}",
    example='When the investigator confirms the laboratory alert for "Hyperkalemia"',
    topic=LABORATORY,
)
def confirms_alert(world: World, who: str, about: str) -> None:
    """The investigator confirms the adverse event the alert proposed (its term, starting on the collection date).
    Only the investigator reviews laboratory alerts."""
    _review(world, who, about, "the confirmation of the laboratory alert",
            lambda uow, alert_id: labs.confirm_alert(uow, world.study_id, cmd.ConfirmLabAlert(alert_id)))  # fmt: skip


@step(
    "the {actor} dismisses the laboratory alert for {string} because {string}",
    example='When the investigator dismisses the laboratory alert for "Platelets" because "clumped sample: the '
    'repeat was normal"',
    topic=LABORATORY,
)
def dismisses_alert(world: World, who: str, about: str, reason: str) -> None:
    """The investigator judges the value not an adverse event, with the reason (required)."""

    def dismiss(uow: UnitOfWork, alert_id: str) -> list[RecordedEvent]:
        return labs.dismiss_alert(uow, world.study_id, cmd.DismissLabAlert(alert_id, reason))

    _review(world, who, about, "the dismissal of the laboratory alert", dismiss)


def _alert_is(world: World, about: str, status: str) -> dict[str, Any]:
    alert = _alert(world, about)
    if alert["status"] != status:
        raise ExpectationFailed(
            f"the laboratory alert for {about} is {alert['status']}", expected=status, actual=_alerts_text(world)
        )
    return alert


@step(
    "the laboratory alert for {string} is confirmed",
    example='Then the laboratory alert for "Hyperkalemia" is confirmed',
    topic=LABORATORY,
)
def alert_confirmed(world: World, about: str) -> None:
    """The investigator confirmed the alert: an adverse event of its term was proposed to safety."""
    _alert_is(world, about, "confirmed")


@step(
    "the laboratory alert for {string} is dismissed",
    example='Then the laboratory alert for "Platelets" is dismissed',
    topic=LABORATORY,
)
def alert_dismissed(world: World, about: str) -> None:
    """The investigator dismissed the alert (its reason is kept with the decision)."""
    _alert_is(world, about, "dismissed")


# triage ------------------------------------------------------------------------------------------------------
def _triage(world: World) -> list[dict[str, Any]]:
    with world.platform.engine.connect() as connection:
        return rm.triage_items(connection, world.study_id)


def _waiting(world: World, patient: str) -> list[dict[str, Any]]:
    found = [t for t in _triage(world) if t["patient_id"] == patient]
    if not found:
        raise ExpectationFailed(
            f"no laboratory result for patient {patient} waits in triage",
            expected=f"a result for {patient} in triage",
            actual=_triage_text(_triage(world)),
        )
    return found


def _triage_text(rows: Iterable[dict[str, Any]]) -> str:
    return "; ".join(f"{t['patient_id']} {t['lab_code']} {t['value']}: {t['reason']}" for t in rows) or "none"


@step(
    "a laboratory result for patient {string} waits in triage because {string}",
    example='Then a laboratory result for patient "0101-OO1" waits in triage because "no subject matches"',
    topic=LABORATORY,
)
def waits_in_triage(world: World, patient: str, reason: str) -> None:
    """A result the system could not match (no such subject, or no single visit) waits for the data manager,
    never dropped nor guessed; the reason is contained in the triage reason (case-insensitive)."""
    found = _waiting(world, patient)
    if not any(reason.lower() in t["reason"].lower() for t in found):
        raise ExpectationFailed(
            f"the result for {patient} waits in triage for another reason",
            expected=reason,
            actual=_triage_text(found),
        )


def _assign(world: World, who: str, patient: str, visit: VisitKey | None, reason: str) -> None:
    subject = world.require_subject()
    waiting = _waiting(world, patient)
    ids = [str(t["triage_id"]) for t in waiting]

    def assign(uow: UnitOfWork) -> list[RecordedEvent]:
        recorded: list[RecordedEvent] = []
        for triage_id in ids:
            command = cmd.AssignLabResult(triage_id, subject, str(visit) if visit else None, False, reason)
            recorded += labs.assign_triaged(uow, world.study_id, command)
        return recorded

    world.command(who, Action.LAB_TRIAGE, f"the assignment of the result of {patient}", assign)


@step(
    "the {actor} assigns the triaged result of patient {string} to the subject because {string}",
    example='When the data manager assigns the triaged result of patient "0101-OO1" to the subject because "subject '
    'number mistyped by the laboratory"',
    topic=LABORATORY,
)
def assigns(world: World, who: str, patient: str, reason: str) -> None:
    """The data manager assigns every result of that laboratory patient number waiting in triage to the current
    subject, with the reason; each is then processed as if it had matched (visit by collection date)."""
    _assign(world, who, patient, None, reason)


@step(
    "the {actor} assigns the triaged result of patient {string} to the subject at the {visit} visit because {string}",
    example='When the data manager assigns the triaged result of patient "0101-001" to the subject at the "Week 4" '
    'visit because "sample drawn the day before the visit"',
    topic=LABORATORY,
)
def assigns_at_visit(world: World, who: str, patient: str, visit: VisitKey, reason: str) -> None:
    """As above, to the visit the data manager chose (for a sample no single visit matched by date)."""
    _assign(world, who, patient, visit, reason)


@step(
    "the {actor} rejects the triaged result of patient {string} because {string}",
    example='When the data manager rejects the triaged result of patient "9999-001" because "not a participant of '
    'this study"',
    topic=LABORATORY,
)
def rejects(world: World, who: str, patient: str, reason: str) -> None:
    """The data manager rejects every result of that laboratory patient number waiting in triage, with the reason
    (another trial's sample, a duplicate...): it is kept in the ledger, never counted as a result."""
    ids = [str(t["triage_id"]) for t in _waiting(world, patient)]

    def reject(uow: UnitOfWork) -> list[RecordedEvent]:
        recorded: list[RecordedEvent] = []
        for triage_id in ids:
            recorded += labs.reject_triaged(uow, world.study_id, cmd.RejectLabResult(triage_id, reason))
        return recorded

    world.command(who, Action.LAB_TRIAGE, f"the rejection of the result of {patient}", reject)


@step("no laboratory result waits in triage", example="Then no laboratory result waits in triage", topic=LABORATORY)
def triage_empty(world: World) -> None:
    """Every result the laboratory sent was matched, assigned or rejected: the triage queue is empty."""
    waiting = _triage(world)
    if waiting:
        raise ExpectationFailed("results wait in triage", expected="none", actual=_triage_text(waiting))


# reconciliation ----------------------------------------------------------------------------------------------
@step(
    "the system sweeps for missing laboratory samples on {date}",
    example="When the system sweeps for missing laboratory samples on 2026-03-10",
    topic=LABORATORY,
)
def sweeps(world: World, day: str) -> None:
    """Reconciliation's sweep (run by the server every hour) on that day: each expected central sample of a visit
    that took place more than `labs.expected.missing_after_days` days before and never arrived raises a query;
    one that has arrived since is resolved. The story reaches that day."""
    world.reach(day)
    on = date.fromisoformat(day)
    _system(
        world, SYSTEM_RECONCILE, "the missing-sample sweep", lambda uow: sweep_missing_samples(uow, world.study_id, on)
    )


def _kind(words: str) -> str:
    code = KINDS.get(" ".join(words.lower().split()))
    if code is None:
        raise ReferenceProblem(f'"{words}" is not a reconciliation discrepancy: {", ".join(KINDS)}')
    return code


def _reconciliation(world: World, words: str, visit: VisitKey | None) -> list[dict[str, Any]]:
    """The subject's reconciliation queries of this kind (and visit), oldest first: their check id is the
    discrepancy id, `RC-<KIND>/<subject>/<visit>[/<test>]`."""
    code = _kind(words)
    found = []
    for query in world.queries():
        parts = str(query["check_id"] or "").split("/")
        if parts[0] == code and (visit is None or (len(parts) > 2 and parts[2] == str(visit))):
            found.append(query)
    return found


def _queries_text(rows: list[dict[str, Any]]) -> str:
    return "; ".join(f"{q['check_id'] or 'manual'} {q['status']} on {q['form']} {q['item']}" for q in rows) or "none"


def _open_on(world: World, words: str, visit: VisitKey | None, item: str) -> None:
    found = _reconciliation(world, words, visit)
    for query in found:
        form = FormKey.parse(query["form"]) if "." in query["form"] else None
        item_id = world.names.item(form.form_id, item).id if form is not None else item
        if query["status"] == "open" and query["item"] == item_id:
            return
    at = f" at {visit}" if visit else ""
    raise ExpectationFailed(
        f"no open reconciliation query about a {words}{at} on {item}",
        expected=f"a query about a {words}{at} open on {item}",
        actual=_queries_text(world.queries()),
    )


def _closed(world: World, words: str, visit: VisitKey | None) -> None:
    found = _reconciliation(world, words, visit)
    if not found or found[-1]["status"] != "closed":
        raise ExpectationFailed(
            f"the reconciliation query about a {words} is {found[-1]['status'] if found else 'not raised'}",
            expected="closed",
            actual=_queries_text(world.queries()),
        )


@step(
    "a reconciliation query about a {words} is open on {item}",
    example="Then a reconciliation query about a local and central mismatch is open on K",
    topic=LABORATORY,
)
def reconciliation_open(world: World, words: str, item: str) -> None:
    """Reconciliation raised a system query on this item of the subject's casebook: about a local and central
    mismatch (the local-lab item itself), a missing sample, a sample out of window (the lab form's collection date)
    or a sample from an unconsented subject (for the data manager)."""
    _open_on(world, words, None, item)


@step(
    "a reconciliation query about a {words} at the {visit} visit is open on {item}",
    example='Then a reconciliation query about a missing sample at the "Week 4" visit is open on LBDAT',
    topic=LABORATORY,
)
def reconciliation_open_at(world: World, words: str, visit: VisitKey, item: str) -> None:
    """As above, for the sample of one visit."""
    _open_on(world, words, visit, item)


@step(
    "the reconciliation query about a {words} is closed",
    example="Then the reconciliation query about a local and central mismatch is closed",
    topic=LABORATORY,
)
def reconciliation_closed(world: World, words: str) -> None:
    """The latest reconciliation query of that kind closed itself: the check holds again (the local value
    corrected, the sample arrived, the consent recorded)."""
    _closed(world, words, None)


@step(
    "the reconciliation query about a {words} at the {visit} visit is closed",
    example='Then the reconciliation query about a missing sample at the "Week 4" visit is closed',
    topic=LABORATORY,
)
def reconciliation_closed_at(world: World, words: str, visit: VisitKey) -> None:
    """As above, for the sample of one visit."""
    _closed(world, words, visit)
