"""`trialstack export audit` and `trialstack verify-package`: a study's signed audit package, and its offline check."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from trialstack.bootstrap import bootstrap
from trialstack.cli.common import DbOption, clear_errors, console, progress_bar
from trialstack.clock import utc_timestamp
from trialstack.ledger import store
from trialstack.ledger.audit_package import PackageInvalid, export_audit_package, verify_audit_package
from trialstack.ledger.checkpoint import site_key


@clear_errors
def export_audit_command(
    study: Annotated[str, typer.Option("--study", help="The study whose ledger chain is exported.")],
    out: Annotated[Path, typer.Option("--out", help="The package file to write (.zip).")],
    db: DbOption = None,
) -> None:
    """Write the study's events, manifest, signed checkpoint and public key to one file for auditors."""
    platform = bootstrap(database_url=db)
    try:
        key = site_key(platform.settings.database_url)
        with platform.engine.connect() as connection:
            total = store.count_events(connection, study)
            with progress_bar(f"exporting {study}", total) as advance:
                summary = export_audit_package(
                    connection,
                    study,
                    out,
                    key,
                    exported_by=f"os:{getpass.getuser()}",
                    exported_at=utc_timestamp(platform.clock.now()),
                    progress=advance,
                )
    finally:
        platform.close()
    console.print(
        f"wrote {summary.path} ({summary.size} bytes): {summary.events} events of {study}, "
        f"head {summary.head_hash} at study_seq {summary.head_seq}",
        highlight=False,
    )
    console.print(f"signed with key {summary.key_id}", highlight=False)


@clear_errors
def verify_package_command(
    package: Annotated[Path, typer.Argument(help="An audit package written by `trialstack export audit`.")],
    key_id: Annotated[
        str | None,
        typer.Option("--key-id", help="The site key fingerprint you expect (from the site, not the package)."),
    ] = None,
) -> None:
    """Check an audit package without any database: layout, signature, manifest, and the whole hash chain."""
    if not package.is_file():
        console.print(f"[red]INVALID[/red] {package}: no such file", highlight=False)
        raise typer.Exit(1)
    try:
        with progress_bar("verifying", None) as advance:
            report = verify_audit_package(package, key_id, advance)
    except PackageInvalid as invalid:
        console.print(f"[red]INVALID[/red] {package}: {invalid.message}", highlight=False)
        raise typer.Exit(1) from None
    console.print(
        f"ok: {report.events} events of {report.study_id}, chain head {report.head_hash} at study_seq "
        f"{report.head_seq}, signed {report.signed_at} by key {report.key_id}",
        highlight=False,
    )
    if key_id is None:
        console.print("compare the key id with the one the site published (or pass --key-id to have it checked)")
