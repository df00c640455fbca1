"""`trialstack reliability`: the reliability suite. CI runs each in a short mode as a pytest (tests/reliability);
these commands run the long modes on the benchmark machine."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import make_url

from trialstack.cli.common import DbOption, clear_errors, console
from trialstack.cli.demo import DEMO_STUDY

app = typer.Typer(
    name="reliability",
    help="Reliability suite: kill -9 crash trials, API fuzzing, malformed input corpus.",
    no_args_is_help=True,
)
StudyOption = Annotated[Path, typer.Option("--study", help="The study the writers and the fuzzer work on.")]


@app.command("crash")
@clear_errors
def crash_command(
    trials: Annotated[int, typer.Option("--trials", min=1, help="How many times to kill -9 the writers.")] = 100,
    db: DbOption = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the kill moments and the simulations.")] = None,
    max_delay: Annotated[
        float, typer.Option("--max-delay", min=0.0, help="Kill within this many seconds of the writers starting.")
    ] = 2.0,
    keep: Annotated[Path | None, typer.Option("--keep", help="Keep the journals in this folder.")] = None,
    study: StudyOption = DEMO_STUDY,
) -> None:
    """Kill the demo's writers with SIGKILL at random moments; after each restart, check that every acknowledged
    command is in the ledger, none is half-written, `verify` passes and `rebuild` gives the same checksum.

    Without --db, a new SQLite database in a temporary folder (a PostgreSQL --db should be an empty database)."""
    from trialstack.reliability.crash import TrialResult, run_crash_trials

    def show(trial: TrialResult) -> None:
        state = "[red]FAILED[/red]" if trial.problems else "ok"
        console.print(
            f"trial {trial.number}: killed after {trial.kill_after:.2f} s, {trial.intents} commands "
            f"({trial.acknowledged} acknowledged, {trial.committed_unacknowledged} committed unacknowledged, "
            f"{trial.not_committed} not committed), {trial.verified_events} events verified: {state}",
            highlight=False,
        )

    with tempfile.TemporaryDirectory(prefix="trialstack-crash-") as scratch:
        folder = keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        url = db or f"sqlite:///{Path(scratch) / 'crash.db'}"
        report = run_crash_trials(url, study, folder, trials=trials, seed=seed, max_delay=max_delay, progress=show)
    console.print(report.summary(), highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command("fuzz")
@clear_errors
def fuzz_command(
    examples: Annotated[int, typer.Option("--examples", min=1, help="Test cases per API operation and phase.")] = 100,
    db: DbOption = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Schemathesis seed (random by default).")] = None,
    max_time: Annotated[int | None, typer.Option("--max-time", min=1, help="Time budget in seconds.")] = None,
    study: StudyOption = DEMO_STUDY,
) -> None:
    """Schemathesis over /openapi.json of the real app, served on 127.0.0.1 over a new database with the study
    loaded and a token holding every blinded role: every phase (stateful included) and every check.

    Without --db, a new SQLite database in a temporary folder (a PostgreSQL --db must be an empty database)."""
    from trialstack.reliability.fuzz import run_fuzz

    with tempfile.TemporaryDirectory(prefix="trialstack-fuzz-") as scratch:
        url = db or f"sqlite:///{Path(scratch) / 'fuzz.db'}"
        shown = make_url(url).render_as_string(hide_password=True)
        console.print(f"fuzzing the API on {shown} with {examples} examples per operation", highlight=False)
        report = run_fuzz(url, study, examples=examples, seed=seed, max_time=max_time)
    console.print(report.summary(), highlight=False)
    if not report.ok:
        console.print(report.output[-20_000:], highlight=False, markup=False)
        raise typer.Exit(1)


@app.command("corpus")
@clear_errors
def corpus_command(
    db: DbOption = None,
    keep: Annotated[Path | None, typer.Option("--keep", help="Write the corpus into this folder and keep it.")] = None,
    study: StudyOption = DEMO_STUDY,
) -> None:
    """Malformed input: truncated, UTF-16, Latin-1, 50 MB, 100 000 levels deep and hostile (billion laughs,
    external entities, DTD fetching, alias bombs) study files through `study validate` and `study load`, and
    broken JSON bodies through the API: each refused with a located message, nothing written.

    Without --db, new SQLite databases in a temporary folder (a PostgreSQL --db must be an empty database)."""
    from trialstack.reliability.corpus import run_corpus

    with tempfile.TemporaryDirectory(prefix="trialstack-corpus-") as scratch:
        folder = keep or Path(scratch) / "corpus"
        url = db or f"sqlite:///{Path(scratch) / 'corpus.db'}"
        report = run_corpus(folder, study, url)
    console.print(report.summary(), highlight=False, markup=False)
    if not report.ok:
        raise typer.Exit(1)
