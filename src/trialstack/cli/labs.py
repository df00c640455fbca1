"""`trialstack labs`: import a laboratory's results (CSV/TSV with a vendor mapping, HL7 v2 ORU^R01, FHIR R4), work
the triage of results that match no subject, list alerts, and listen for HL7 over MLLP.

An import is one unit of work for the whole file, acting as the machine `feed:<source>` (DESIGN §2): a file with
refused rows writes nothing (exit 1) unless `--accept-valid` takes its valid rows; `--dry-run` does everything and
rolls back. CSV rows are streamed (a million-row file keeps memory flat). Triage decisions are a data manager's,
so they sign in as themselves like `irt` and `subject erase` do.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer
from rich.markup import escape
from rich.table import Table

from trialstack.bootstrap import Platform, bootstrap
from trialstack.cli.common import DbOption, clear_errors, console, err_console, progress_bar
from trialstack.errors import InvalidInput, NotFound
from trialstack.identity.authentication import IDENTITY_SYSTEM, login, logout, user_actor
from trialstack.identity.policy import Action, authorize
from trialstack.labs import commands as cmd
from trialstack.labs import handlers
from trialstack.labs import readmodel as rm
from trialstack.labs.handlers import LabImportRefused, LabImportReport
from trialstack.ledger.envelope import Actor
from trialstack.standards.fhir_labs import parse_fhir
from trialstack.standards.hl7_oru import parse_oru, split_messages
from trialstack.standards.lab_csv import DEFAULT_MAPPING, load_mapping, read_csv
from trialstack.standards.lab_results import LabObservation, LabParseError

labs_app = typer.Typer(
    name="labs", help="Laboratory results: import, triage, alerts, MLLP listener.", no_args_is_help=True
)

Format = Literal["csv", "tsv", "hl7", "fhir"]
Row = LabObservation | LabParseError
StudyOption = Annotated[str, typer.Option("--study", help="The study.")]
AsOption = Annotated[str, typer.Option("--as", help="Your username (lab.triage: a data manager).")]
StdinOption = Annotated[bool, typer.Option("--password-stdin", help="Read your password from the first line of stdin.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded in the ledger).")]
SNIFF_BYTES = 4096


def feed_actor(source: str) -> Actor:
    """The machine actor of a laboratory's feed (DESIGN §2: `feed:central-lab`)."""
    return Actor(f"feed:{source}", "system")


def sniff_format(head: bytes) -> Format:
    """The format from the file's first bytes: an MSH (or batch) segment is HL7, a JSON object naming a
    resourceType is FHIR, anything else is delimited text (tab-separated when the header line has tabs)."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff\x0b \t\r\n")
    if text[:4] in {"MSH|", "FHS|", "BHS|"}:
        return "hl7"
    if text.startswith("{") and '"resourceType"' in text:
        return "fhir"
    first_line = text.split("\n", 1)[0]
    return "tsv" if first_line.count("\t") > max(first_line.count(","), first_line.count(";")) else "csv"


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as error:
        raise InvalidInput(f"{file}: cannot be read ({error.strerror or error})", field="file") from None


def _head(file: Path) -> bytes:
    try:
        with file.open("rb") as stream:
            return stream.read(SNIFF_BYTES)
    except OSError as error:
        raise InvalidInput(f"{file}: cannot be read ({error.strerror or error})", field="file") from None


def hl7_rows(text: str, name: str) -> Iterator[Row]:
    """Every message's results; a message that cannot be parsed is one located error row."""
    for number, message in enumerate(split_messages(text), start=1):
        try:
            yield from parse_oru(message, f"{name} message {number}")
        except LabParseError as error:
            yield error


def fhir_rows(data: bytes, name: str) -> Iterator[Row]:
    """One FHIR document's results, or one located error row when it is not valid FHIR."""
    try:
        yield from parse_fhir(data, name)
    except LabParseError as error:
        yield error


def file_rows(file: Path, chosen: Format | None, mapping: Path | None) -> tuple[Format, Iterator[Row]]:
    """The file's rows, lazily for CSV/TSV; the header is checked against the mapping here, before any write
    (a mapping naming a column the file lacks raises LabParseError: exit 2)."""
    kind = chosen or sniff_format(_head(file))
    name = str(file)
    if kind == "hl7":
        data = _read(file)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        return kind, hl7_rows(text, name)
    if kind == "fhir":
        return kind, fhir_rows(_read(file), name)
    vendor = load_mapping(mapping) if mapping is not None else DEFAULT_MAPPING
    _head(file)  # unreadable: one clear error, not an OSError from inside the reader
    rows = read_csv(file, vendor, delimiter="\t" if kind == "tsv" else None)
    first = next(rows, None)
    return kind, itertools.chain(() if first is None else (first,), rows)


def run_import(
    platform: Platform, study: str, source: str, rows: Iterable[Row], *, accept_valid: bool, dry_run: bool, quiet: bool
) -> LabImportReport:
    """One unit of work for the whole file; committed unless a dry run. Raises LabImportRefused (rolled back)."""
    with (
        progress_bar("results", None) as advance,
        platform.unit_of_work(feed_actor(source)) as uow,
    ):
        report = handlers.receive_results(
            uow, study, cmd.ReceiveLabResults(source, rows, accept_valid), progress=None if quiet else advance
        )
        if not dry_run:
            uow.commit()
            report.committed = True
    return report


def _summary(report: LabImportReport, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("rows", "received", "corrected", "repeated", "unmatched → triage", "graded", "alerts", "refused"):
        table.add_column(column, justify="right")
    table.add_row(*(str(n) for n in (report.rows, report.received, report.corrected, report.repeated,
                                      report.unmatched, report.graded, report.alerts, report.refused)))  # fmt: skip
    return table


def _print_report(report: LabImportReport, title: str, outcome: str, as_json: bool, dry_run: bool) -> None:
    if as_json:
        console.print_json(json.dumps({**report.as_dict(), "dry_run": dry_run, "outcome": outcome}))
        return
    console.print(_summary(report, title), highlight=False)
    for error in report.errors:
        where = f"{error.location}, {error.field}" if error.field else error.location
        console.print(f"  refused: {escape(where)}: {escape(error.reason)}", highlight=False)
    if report.refused > len(report.errors):
        console.print(f"  … and {report.refused - len(report.errors)} more refused", highlight=False)
    console.print(outcome, highlight=False)


@labs_app.command("import")
@clear_errors
def import_command(
    file: Annotated[Path, typer.Argument(help="The results file (CSV/TSV, HL7 v2 ORU^R01, FHIR R4 JSON).")],
    study: StudyOption,
    source: Annotated[str, typer.Option("--source", help="The laboratory (one of the study's labs.sources).")],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="The vendor's CSV mapping (YAML); default: LabObservation names.")
    ] = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv, tsv, hl7 or fhir (default: sniffed from the content).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Do everything, then roll back.")] = False,
    accept_valid: Annotated[
        bool, typer.Option("--accept-valid", help="Take the valid rows of a file with refused rows.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (no progress bar).")] = False,
    db: DbOption = None,
) -> None:
    """Import a laboratory's results in one unit of work: exit 1 (nothing written) when rows are refused and
    --accept-valid is not given; exit 2 on an unreadable file or a bad mapping."""
    if file_format is not None and file_format not in ("csv", "tsv", "hl7", "fhir"):
        raise InvalidInput(f"--format {file_format!r}: choose csv, tsv, hl7 or fhir", field="format")
    kind, rows = file_rows(file, cast(Format | None, file_format), mapping)
    platform = bootstrap(database_url=db, migrate=True)
    title = f"{file} ({kind}) → {study}, laboratory {source}"
    try:
        report = run_import(platform, study, source, rows, accept_valid=accept_valid, dry_run=dry_run, quiet=as_json)
    except LabImportRefused as refused:
        outcome = f"{refused.report.refused} of {refused.report.rows} results refused: nothing written"
        _print_report(refused.report, title, outcome + " (--accept-valid takes the valid rows)", as_json, dry_run)
        raise typer.Exit(1) from None
    finally:
        platform.close()
    outcome = "dry run: rolled back, nothing written" if dry_run else "committed"
    _print_report(report, title, outcome, as_json, dry_run)


def _rows_table(title: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> Table | str:
    if not rows:
        return f"{title}: none"
    table = Table(title=f"{title}: {len(rows)}", title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else escape(str(row[c])) for c in columns))
    return table


@labs_app.command("triage")
@clear_errors
def triage_command(
    study: StudyOption,
    status: Annotated[str, typer.Option("--status", help="open, assigned, rejected or all.")] = "open",
    db: DbOption = None,
) -> None:
    """Results that matched no subject or visit, waiting for a data manager."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with platform.engine.connect() as connection:
            items = rm.triage_items(connection, study, None if status == "all" else status)
    finally:
        platform.close()
    columns = ("triage_id", "source", "patient_id", "accession", "lab_code", "test", "collected_at", "value",
               "unit", "status", "reason")  # fmt: skip
    console.print(_rows_table(f"{study}: triage ({status})", columns, items), highlight=False)


@labs_app.command("alerts")
@clear_errors
def alerts_command(
    study: StudyOption,
    status: Annotated[str | None, typer.Option("--status", help="raised, confirmed or dismissed.")] = None,
    db: DbOption = None,
) -> None:
    """Graded values at or above the study's alert grade, and what the investigator decided."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with platform.engine.connect() as connection:
            found = rm.alerts(connection, study, status)
    finally:
        platform.close()
    columns = ("alert_id", "subject_id", "site_id", "test", "term", "grade", "value", "unit", "collected_at", "status")
    console.print(_rows_table(f"{study}: lab alerts", columns, found), highlight=False)


@contextmanager
def _signed_in(
    platform: Platform, study: str, username: str, password_stdin: bool, site: str | None
) -> Iterator[Actor]:
    """Sign in as `username`, check lab.triage (at the subject's site when given), yield the actor; sign out."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else typer.prompt("Password", hide_input=True)
    with platform.unit_of_work(IDENTITY_SYSTEM) as uow:
        session = login(uow, username, password)
        uow.commit()
    try:
        grant = authorize(session.principal, Action.LAB_TRIAGE, study, site)
        yield Actor(f"user:{username}", grant.role.value)
    finally:
        with platform.unit_of_work(user_actor(username)) as uow:
            logout(uow, session.session_id)
            uow.commit()


@labs_app.command("assign")
@clear_errors
def assign_command(
    triage_id: Annotated[str, typer.Argument(help="The triaged result.")],
    study: StudyOption,
    subject: Annotated[str, typer.Option("--subject", help="The subject the result belongs to.")],
    reason: ReasonOption,
    as_user: AsOption,
    visit: Annotated[str | None, typer.Option("--visit", help="The visit (default: matched by date).")] = None,
    remember: Annotated[
        bool, typer.Option("--remember", help="Map the lab's patient id to this subject for later results.")
    ] = False,
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Assign a triaged result to a subject (and visit): it is then processed as if it had matched."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with platform.engine.connect() as connection:
            facts = rm.subject_facts(connection, study, [subject]).get(subject)
        if facts is None:
            raise NotFound(f"no subject {subject} in study {study}", field="subject")
        with (
            _signed_in(platform, study, as_user, password_stdin, facts.site_id) as actor,
            platform.unit_of_work(actor) as uow,
        ):
            events = handlers.assign_triaged(
                uow, study, cmd.AssignLabResult(triage_id, subject, visit, remember, reason)
            )
            uow.commit()
    finally:
        platform.close()
    console.print(f"assigned {triage_id} to {subject} ({len(events)} events)", highlight=False)


@labs_app.command("reject")
@clear_errors
def reject_command(
    triage_id: Annotated[str, typer.Argument(help="The triaged result.")],
    study: StudyOption,
    reason: ReasonOption,
    as_user: AsOption,
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Reject a triaged result (it belongs to no subject of the study)."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with (
            _signed_in(platform, study, as_user, password_stdin, None) as actor,
            platform.unit_of_work(actor) as uow,
        ):
            handlers.reject_triaged(uow, study, cmd.RejectLabResult(triage_id, reason))
            uow.commit()
    finally:
        platform.close()
    console.print(f"rejected {triage_id}", highlight=False)


@labs_app.command("listen")
@clear_errors
def listen_command(
    study: StudyOption,
    source: Annotated[str, typer.Option("--source", help="The laboratory (one of the study's labs.sources).")],
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port).")] = 2575,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    db: DbOption = None,
) -> None:
    """Receive HL7 v2 ORU^R01 over MLLP: each message committed, then acknowledged (AA, AE or AR). SIGTERM or
    Ctrl-C stops accepting, finishes the message in hand and exits 0."""
    from trialstack.integration.mllp import serve

    platform = bootstrap(database_url=db, migrate=True)
    try:
        serve(platform, study, source, host, port, log=lambda line: err_console.print(escape(line), highlight=False))
    finally:
        platform.close()
