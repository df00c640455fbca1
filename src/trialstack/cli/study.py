"""`trialstack study`: the JSON Schema, validate, show and diff study definitions. Nothing is written.

Every command reads its files through `read_study`: TrialStack YAML, CDISC ODM 1.3.2 / 2.0 and USDM v4,
recognised by content; what an import defaulted or could not map is printed as warnings (stderr), and
`--report FILE` writes the full mapping report.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from trialstack.bootstrap import bootstrap
from trialstack.capture.impact import AmendmentImpact, amendment_impact
from trialstack.cli.common import clear_errors, console, err_console
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.diff import diff_definitions
from trialstack.protocol.diff_render import render_diff
from trialstack.protocol.version import StudyVersion, study_version
from trialstack.standards.loader import StudyCheck, check_study_file

app = typer.Typer(
    name="study",
    help="Study definitions: validate, show, diff, and the JSON Schema of the format.",
    no_args_is_help=True,
)


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


PathArgument = Annotated[
    Path, typer.Argument(help="A study definition file: TrialStack YAML, CDISC ODM 1.3.2 / 2.0 or USDM v4 JSON.")
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]
ReportOption = Annotated[
    Path | None,
    typer.Option("--report", help="Write the mapping report of an ODM or USDM import (mapped, defaulted, not mapped)."),
]


def read_study(path: Path, report: Path | None = None) -> StudyCheck:
    """Check a study file of any format, print its warnings and write its mapping report when asked."""
    check = check_study_file(path)
    for warning in check.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if report is not None:
        if check.report is not None:
            report.write_text(check.report.render(), encoding="utf-8")
            err_console.print(f"mapping report written to {report}", highlight=False)
        elif check.problems:
            err_console.print(f"no mapping report: {path} has problems", highlight=False)
        else:
            err_console.print(f"no mapping report: {path} is TrialStack YAML, nothing was mapped", highlight=False)
    return check


def load_study(path: Path, report: Path | None = None) -> StudyVersion:
    """The StudyVersion of a study file of any format (StudyDefinitionError on problems), warnings printed."""
    return study_version(read_study(path, report).definition_or_raise())


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of a study definition (for editors and the docs)."""
    _print_json(StudyDefinition.model_json_schema())


@app.command("validate")
@clear_errors
def validate_command(path: PathArgument, report: ReportOption = None) -> None:
    """Check a study definition and print every problem as file:line:col: pointer: message; exit 1 if any.

    Warnings (what an ODM or USDM import defaulted or could not map) are printed and do not fail.
    """
    check = read_study(path, report)
    for problem in check.problems:
        typer.echo(str(problem))
    if check.definition is None:
        count = len(check.problems)
        typer.echo(f"{count} problem{'s' if count != 1 else ''}", err=True)
        raise typer.Exit(1)
    version = study_version(check.definition)
    study = check.definition.study
    count = len(check.warnings)
    warned = f", {count} warning{'s' if count != 1 else ''}" if count else ""
    typer.echo(
        f"{path}: valid {check.format}, {study.id} protocol version {study.protocol_version}, "
        f"hash {version.hash}{warned}"
    )


@app.command("show")
@clear_errors
def show_command(path: PathArgument, output: FormatOption = OutputFormat.TEXT, report: ReportOption = None) -> None:
    """Show a study definition file: visits with their days and windows, forms, checks (loads nothing)."""
    version = load_study(path, report)
    if output is OutputFormat.JSON:
        _print_json({"hash": version.hash, "definition": json.loads(version.canonical_json)})
        return
    _print_summary(version)


def _print_summary(version: StudyVersion) -> None:
    definition = version.definition
    study = definition.study
    console.print(f"[bold]{study.id}[/bold] {study.name}", highlight=False)
    console.print(
        f"phase {study.phase.value if study.phase else 'not given'}, protocol version {study.protocol_version}, "
        f"{len(definition.sites)} sites, {len(definition.arms)} arms, hash {version.short_hash}",
        highlight=False,
    )
    visits = Table(title="Schedule", title_justify="left")
    for column in ("visit", "name", "type", "day", "window", "forms"):
        visits.add_column(column)
    for visit in definition.schedule.visits:
        days = visit.window_days()
        window = "" if days is None else f"-{visit.window.early}/+{visit.window.late} (days {days[0]} to {days[1]})"
        anchor = " (day 1 anchor)" if visit.id == definition.schedule.anchor else ""
        day = "" if visit.day is None else str(visit.day)
        kind = visit.type.value + (", repeating" if visit.repeating else "")
        visits.add_row(visit.id + anchor, visit.name, kind, day, window, ", ".join(visit.forms))
    console.print(visits)
    forms = Table(title="Forms", title_justify="left")
    for column in ("form", "name", "items", "edit checks", "collected"):
        forms.add_column(column)
    checks = list(definition.all_edit_checks())
    for form in definition.forms:
        count = sum(1 for check in checks if check.form == form.id)
        at = (
            "log"
            if form.id in definition.schedule.log_forms
            else ", ".join(visit.id for visit in definition.schedule.visits_with_form(form.id))
        )
        name = form.name + (" (repeating)" if form.repeating else "")
        forms.add_row(form.id, name, str(len(form.items)), str(count), at)
    console.print(forms)
    derived = len(checks) - len(definition.edit_checks)
    console.print(f"{len(checks)} edit checks ({len(definition.edit_checks)} declared, {derived} from item ranges)")
    if definition.eligibility is not None:
        console.print(
            f"{len(definition.eligibility.criteria)} eligibility criteria on form {definition.eligibility.form}"
        )


@app.command("diff")
@clear_errors
def diff_command(
    old: Annotated[Path, typer.Argument(help="The current study definition.")],
    new: Annotated[Path, typer.Argument(help="The amended study definition.")],
    output: FormatOption = OutputFormat.TEXT,
    db: Annotated[
        str | None, typer.Option("--db", help="Also report the impact on the data captured in this database.")
    ] = None,
) -> None:
    """List what an amendment adds, removes and changes; with --db, which subjects and forms it touches."""
    old_version, new_version = load_study(old), load_study(new)
    diff = diff_definitions(old_version.definition, new_version.definition)
    impact = None
    if db is not None:
        platform = bootstrap(database_url=db)
        try:
            with platform.engine.connect() as connection:
                impact = amendment_impact(
                    connection, new_version.definition.study.id, diff, old_version.definition, new_version.definition
                )
        finally:
            platform.close()
    if output is OutputFormat.JSON:
        extra = impact.to_json() if impact is not None else {}
        _print_json({"old_hash": old_version.hash, "new_hash": new_version.hash, **diff.to_json(), **extra})
        return
    console.print(f"hashes {old_version.short_hash} -> {new_version.short_hash}", highlight=False)
    console.print(render_diff(diff))
    if impact is not None:
        _print_impact(impact)


def _print_impact(impact: AmendmentImpact) -> None:
    table = Table("change", "subjects", "form instances", "note", title="Impact on captured data")
    for item in impact.changes:
        table.add_row(
            f"{item.change.kind.value} {item.change.entity} {item.change.id}",
            str(len(item.subjects)),
            str(len(item.forms)),
            item.note,
        )
    console.print(table)
    who = ", ".join(impact.reconsent) if impact.reconsent else "nobody"
    console.print(f"must re-consent before their next visit: {who}", highlight=False)
