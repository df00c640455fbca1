"""`trialstack ops kri-check`: compute the KRIs as of now and record each status that changed (KriThresholdCrossed).

`trialstack serve` checks on its own every few minutes (TRIALSTACK_KRI_CHECK_MINUTES); this command is for operators
and scheduled jobs when no server runs. A repeat with nothing changed records nothing: a crossing is recorded once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from trialstack.bootstrap import bootstrap
from trialstack.cli.common import DbOption, clear_errors, console
from trialstack.ops.handlers import check_studies

ops_app = typer.Typer(name="ops", help="Trial operations: key risk indicators.", no_args_is_help=True)


@ops_app.command("kri-check")
@clear_errors
def kri_check_command(
    study: Annotated[str | None, typer.Option("--study", help="One study (default: every loaded study).")] = None,
    db: DbOption = None,
) -> None:
    """Record a KriThresholdCrossed for every KRI and site whose status changed since the last check."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        recorded = check_studies(platform.engine, platform.unit_of_work, [study] if study else None)
    finally:
        platform.close()
    for study_id, count in recorded.items():
        console.print(f"{study_id}: {count} KRI crossings recorded", highlight=False)
