"""Backup and restore of the whole database: `trialstack backup --out FILE`, `trialstack restore FILE [--force]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialstack.cli.common import DbOption, clear_errors, console, err_console
from trialstack.ledger.backup import BACKENDS, Manifest, backup, restore
from trialstack.settings import Settings


def _describe(manifest: Manifest) -> str:
    studies = len(manifest.studies)
    return (
        f"{BACKENDS[manifest.backend]}, {manifest.events} events in {studies} {'study' if studies == 1 else 'studies'},"
        f" {len(manifest.tables)} tables, taken {manifest.created_at}"
    )


def _vault_note(manifest: Manifest) -> None:
    if any(table.startswith("vault_") for table in manifest.tables):
        err_console.print(
            "[yellow]note:[/yellow] the personal-data vault's tables are in the backup, its master key is not:"
            " keep the key (TRIALSTACK_VAULT_KEY / TRIALSTACK_VAULT_KEY_FILE / <database>.vault-key) safe on its own",
            highlight=False,
        )


@clear_errors
def backup_command(
    out: Annotated[Path, typer.Option("--out", help="The backup file to write.", show_default=False)],
    db: DbOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Back up the whole database to one file (SQLite: online backup API; PostgreSQL: pg_dump custom format)."""
    manifest = backup(Settings.from_env(db).database_url, out, force=force)
    console.print(f"backup written: {out} ({_describe(manifest)})", highlight=False)
    console.print(f"payload sha256: {manifest.payload_sha256}", highlight=False)
    _vault_note(manifest)


@clear_errors
def restore_command(
    file: Annotated[Path, typer.Argument(help="A file written by trialstack backup.", show_default=False)],
    db: DbOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the contents of a target database that is not empty.")
    ] = False,
) -> None:
    """Restore a backup into an empty database (or replace one with --force); then run verify and rebuild."""
    result = restore(file, Settings.from_env(db).database_url, force=force)
    console.print(f"restored: {file} ({_describe(result.manifest)})", highlight=False)
    console.print("study heads match the backup's manifest; `trialstack verify` rechecks every chain", highlight=False)
    if result.left_in_place:
        err_console.print(
            f"[yellow]note:[/yellow] tables not in the backup were left in place: {', '.join(result.left_in_place)}",
            highlight=False,
        )
    _vault_note(result.manifest)
