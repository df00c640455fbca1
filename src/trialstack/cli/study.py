"""`trialstack study`: the JSON Schema, validate, show and diff study definitions. Nothing is written."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from trialstack.bootstrap import bootstrap
from trialstack.capture.impact import AmendmentImpact, amendment_impact
from trialstack.cli.common import clear_errors, console
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.diff import diff_definitions
from trialstack.protocol.diff_render import render_diff
from trialstack.protocol.version import StudyVersion, study_version
from trialstack.protocol.yaml_loader import check_study_file, load_study_file

app = typer.Typer(
    name="study",
    help="Study definitions: validate, show, diff, and the JSON Schema of the format.",
    no_args_is_help=True,
)


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


PathArgument = Annotated[Path, typer.Argument(help="A study definition file (TrialStack YAML).")]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of a study definition (for editors and the docs)."""
    _print_json(StudyDefinition.model_json_schema())


@app.command("validate")
@clear_errors
def validate_command(path: PathArgument) -> None:
    """Check a study definition and print every problem as file:line:col: pointer: message; exit 1 if any."""
    check = check_study_file(path)
    for problem in check.problems:
        typer.echo(str(problem))
    if check.definition is None:
        count = len(check.problems)
        typer.echo(f"{count} problem{'s' if count != 1 else ''}", err=True)
        raise typer.Exit(1)
    version = study_version(check.definition)
    study = check.definition.study
    typer.echo(f"{path}: valid, {study.id} protocol version {study.protocol_version}, hash {version.hash}")


@app.command("show")
@clear_errors
def show_command(path: PathArgument, output: FormatOption = OutputFormat.TEXT) -> None:
    """Show a study definition file: visits with their days and windows, forms, checks (loads nothing)."""
    version = study_version(load_study_file(path))
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
    old_version, new_version = study_version(load_study_file(old)), study_version(load_study_file(new))
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
