"""`trialstack reconcile sweep`: raise a discrepancy (and its query) for each expected central lab sample that is
overdue today, and resolve those that arrived since.

`trialstack serve` sweeps on its own every few minutes (TRIALSTACK_RECONCILE_SWEEP_MINUTES); this command is for
operators and scheduled jobs when no server runs. A repeat on the same day appends nothing.
"""

from __future__ import annotations

from typing import Annotated

import typer

from trialstack.bootstrap import bootstrap
from trialstack.cli.common import DbOption, clear_errors, console
from trialstack.reconcile.handlers import sweep_studies

reconcile_app = typer.Typer(
    name="reconcile", help="Reconciliation of the EDC with the central laboratory.", no_args_is_help=True
)


@reconcile_app.command("sweep")
@clear_errors
def sweep_command(
    study: Annotated[str | None, typer.Option("--study", help="One study (default: every loaded study).")] = None,
    db: DbOption = None,
) -> None:
    """Raise sample_missing for every expected central sample overdue today; resolve those that arrived."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        today = platform.clock.now().date()
        appended = sweep_studies(platform.engine, platform.unit_of_work, today, [study] if study else None)
    finally:
        platform.close()
    for study_id, count in appended.items():
        console.print(f"{study_id}: {count} missing-sample discrepancies raised or resolved", highlight=False)
