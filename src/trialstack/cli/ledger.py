"""Ledger commands: init, verify, rebuild."""

from __future__ import annotations

from typing import Annotated

import typer

from trialstack.bootstrap import bootstrap
from trialstack.cli.common import DbOption, clear_errors, console, progress_bar
from trialstack.ledger import store
from trialstack.ledger.projections import projections_checksum, rebuild
from trialstack.ledger.verify import verify


@clear_errors
def init_command(db: DbOption = None) -> None:
    """Create or migrate the database schema (running it twice is harmless)."""
    platform = bootstrap(database_url=db, migrate=True)
    console.print(f"database ready: {platform.engine.url.render_as_string(hide_password=True)}")
    platform.close()


@clear_errors
def verify_command(
    db: DbOption = None,
    study: Annotated[str | None, typer.Option("--study", help="Verify one study only.")] = None,
) -> None:
    """Recompute every hash chain; exit 1 and name the first broken link when one is found."""
    platform = bootstrap(database_url=db)
    with platform.engine.connect() as connection:
        total = store.count_events(connection, study)
        with progress_bar("verifying", total) as advance:
            report = verify(connection, study, advance)
    platform.close()
    for link in report.broken:
        console.print(
            f"[red]BROKEN[/red] study {link.study_id} at study_seq {link.study_seq}: {link.reason}", highlight=False
        )
    if not report.ok:
        raise typer.Exit(1)
    console.print(f"ok: {report.events} events in {report.studies} studies verified", highlight=False)


@clear_errors
def rebuild_command(db: DbOption = None) -> None:
    """Drop every read model and replay the ledger; print the projections checksum before and after."""
    platform = bootstrap(database_url=db, migrate=True)
    before = projections_checksum(platform.engine, platform.wiring)
    with platform.engine.connect() as connection:
        total = store.count_events(connection)
    with progress_bar("replaying", total) as advance:
        replayed = rebuild(platform.engine, platform.wiring, advance)
    after = projections_checksum(platform.engine, platform.wiring)
    platform.close()
    console.print(f"replayed {replayed} events", highlight=False)
    console.print(f"checksum before: {before}", highlight=False)
    console.print(f"checksum after:  {after}", highlight=False)
    if before != after:
        console.print("[yellow]the read models differed from a replay of the ledger; they are now rebuilt[/yellow]")
