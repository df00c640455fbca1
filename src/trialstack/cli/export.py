"""`trialstack export`: write a study's version in force in a CDISC standard (ODM 1.3.2 for now).

The file is written beside its destination and renamed into place only when complete, so a failed
export (an unknown study, data that does not fit the definition) never leaves a partial file behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from trialstack.bootstrap import Platform, bootstrap
from trialstack.capture.clinical_source import CaptureClinicalData
from trialstack.cli.common import DbOption, clear_errors, console, err_console
from trialstack.errors import NotFound, TrialStackError
from trialstack.protocol.readmodel import version_in_force
from trialstack.protocol.version import StudyVersion
from trialstack.queries.clinical import subject_queries
from trialstack.standards.clinical import ClinicalDataSource
from trialstack.standards.odm_export import export_odm

app = typer.Typer(name="export", help="Export a study in a CDISC standard.", no_args_is_help=True)


@app.callback()
def export_group() -> None:
    """Export a study's version in force in a CDISC standard."""


def clinical_source(platform: Platform, version: StudyVersion) -> ClinicalDataSource:
    """The captured data of the study as of now: capture's casebooks with the queries raised on them."""
    return CaptureClinicalData(platform.engine, version.definition, queries=subject_queries, vault=platform.vault)


def load_version(platform: Platform, study_id: str) -> StudyVersion:
    """The StudyVersion in force for `study_id`, or a NotFound that says where it looked."""
    where = platform.engine.url.render_as_string(hide_password=True)
    try:
        with platform.engine.connect() as connection:
            version = version_in_force(connection, study_id)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or type(error).__name__)
        raise TrialStackError(
            f"cannot read study versions from {where} ({reason}); run `trialstack init` first"
        ) from None
    if version is None:
        raise NotFound(f"study {study_id!r} has no published version in {where}; load it with `trialstack study load`")
    return version


@app.command("odm")
@clear_errors
def odm_command(
    study: Annotated[str, typer.Option("--study", help="The study id (e.g. HTN-201).")],
    out: Annotated[Path, typer.Option("--out", help="The ODM XML file to write.")],
    clinical_data: Annotated[
        bool, typer.Option("--clinical-data", help="Include subjects, audit trails, signatures and queries.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Export the study's version in force as CDISC ODM 1.3.2 (metadata; with --clinical-data, captured data)."""
    platform = bootstrap(database_url=db)
    try:
        version = load_version(platform, study)
        source = clinical_source(platform, version) if clinical_data else None
        partial = out.with_name(f".{out.name}.partial")
        try:
            with partial.open("wb") as stream:
                warnings = export_odm(version, stream, source)
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    finally:
        platform.close()
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    what = "metadata and clinical data" if clinical_data else "metadata"
    console.print(f"wrote {out}: ODM 1.3.2 {what} of {study}, version {version.hash}", highlight=False)
