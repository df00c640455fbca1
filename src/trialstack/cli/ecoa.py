"""`trialstack ecoa sweep`: record missed diary entries and compliance alerts as of now.

`trialstack serve` sweeps on its own every few minutes; this command is for operators and scheduled jobs (cron)
when no server runs, and for a study just loaded. Each subject is one unit of work; a repeat records nothing new.
"""

from __future__ import annotations

from typing import Annotated

import typer

from trialstack.bootstrap import bootstrap
from trialstack.cli.common import DbOption, clear_errors, console
from trialstack.ecoa.handlers import sweep_study
from trialstack.ledger import store

ecoa_app = typer.Typer(name="ecoa", help="Participant questionnaires and diaries.", no_args_is_help=True)


@ecoa_app.command("sweep")
@clear_errors
def sweep_command(
    study: Annotated[str | None, typer.Option("--study", help="One study (default: every study).")] = None,
    db: DbOption = None,
) -> None:
    """Append DiaryEntryMissed for closed windows and ComplianceAlertRaised below the study's threshold."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with platform.engine.connect() as connection:
            studies = [study] if study else [s for s in store.study_ids(connection) if not s.startswith("_")]
        for study_id in studies:
            appended = sweep_study(platform.engine, platform.unit_of_work, study_id)
            console.print(f"{study_id}: {appended} events appended", highlight=False)
    finally:
        platform.close()
