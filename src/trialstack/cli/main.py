"""Entry point of the `trialstack` command."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from trialstack.cli import (
    audit,
    bdd,
    consent,
    demo,
    ecoa,
    export,
    irt,
    labs,
    ledger,
    ops,
    reconcile,
    reliability,
    study,
    study_publish,
    subjects,
    users,
    webhook,
)
from trialstack.cli import backup as backup_cli
from trialstack.cli import relay as relay_cli
from trialstack.cli.common import DbOption, clear_errors, console
from trialstack.cli.demo import DEMO_STUDY
from trialstack.errors import TrialStackError
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.rules import RuleType
from trialstack.protocol.symbols import study_symbols
from trialstack.standards.loader import load_study_file

app = typer.Typer(
    name="trialstack", help="TrialStack: clinical trial data on one verifiable ledger.", no_args_is_help=True
)
bench_app = typer.Typer(help="Benchmarks: ratios against a baseline measured in the same run.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

app.add_typer(study.app, name="study")
app.add_typer(bdd.app, name="bdd")
app.add_typer(reliability.app, name="reliability")
study.app.command("load")(study_publish.load_command)

app.command("demo")(demo.demo_command)
app.command("init")(ledger.init_command)
app.command("verify")(ledger.verify_command)
app.command("rebuild")(ledger.rebuild_command)
app.command("backup")(backup_cli.backup_command)
app.command("restore")(backup_cli.restore_command)
app.command("relay")(relay_cli.relay_command)

app.add_typer(users.user_app, name="user")
app.add_typer(subjects.subject_app, name="subject")
app.add_typer(ecoa.ecoa_app, name="ecoa")
app.add_typer(consent.consent_app, name="consent")
app.add_typer(irt.irt_app, name="irt")
app.add_typer(labs.labs_app, name="labs")
app.add_typer(ops.ops_app, name="ops")
app.add_typer(reconcile.reconcile_app, name="reconcile")
app.add_typer(webhook.webhook_app, name="webhook")
app.add_typer(users.token_app, name="token")
export.app.command("audit")(audit.export_audit_command)
app.add_typer(export.app, name="export")
app.command("verify-package")(audit.verify_package_command)


@app.command("serve")
@clear_errors
def serve_command(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the API and web app with uvicorn (127.0.0.1:8000 by default)."""
    import uvicorn

    from trialstack.api.app import create_app
    from trialstack.bootstrap import bootstrap

    platform = bootstrap(database_url=db, migrate=True)
    platform.check_vault()
    console.print(f"serving on http://{host}:{port}", highlight=False)
    uvicorn.run(create_app(platform), host=host, port=port, log_level="info")


@bench_app.command("ledger")
@clear_errors
def bench_ledger_command(
    events: Annotated[int, typer.Option(help="Events per figure.")] = 50_000,
    postgres: Annotated[
        str | None, typer.Option(help="PostgreSQL server URL (a scratch database is created and dropped).")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
) -> None:
    """Append, verify and rebuild throughput on SQLite and PostgreSQL against raw baselines."""
    run = load_benchmark("ledger_bench").run
    run(events=events, postgres_server=postgres, emit=console.print)


@bench_app.command("capture")
@clear_errors
def bench_capture_command(
    saves: Annotated[int, typer.Option(help="Form saves per figure.")] = 300,
    sizes: Annotated[str, typer.Option(help="Ledger sizes to measure at, comma-separated.")] = "0,1000000,10000000",
    postgres: Annotated[
        str | None, typer.Option(help="PostgreSQL server URL (a scratch database is created and dropped).")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
) -> None:
    """Form-save latency (p50/p99) against a bare INSERT + COMMIT, and at 1 M / 10 M ledger events."""
    load_benchmark("capture_bench").run(
        saves=saves, sizes=[int(s) for s in sizes.split(",")], postgres_server=postgres, emit=console.print
    )


@bench_app.command("load")
@clear_errors
def bench_load_command(
    clients: Annotated[int, typer.Option(help="Concurrent clients, each saving its own subject's form.")] = 50,
    saves: Annotated[int, typer.Option(help="Saves (and bare commits) per client.")] = 20,
    postgres: Annotated[
        str, typer.Option(help="PostgreSQL server URL (a scratch database is created and dropped).")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
) -> None:
    """Form saves over HTTP against `trialstack serve` on PostgreSQL by many clients at once (saves/s, p99),
    against as many clients doing a bare INSERT + COMMIT each."""
    load_benchmark("load_bench").run(clients=clients, saves=saves, postgres_server=postgres, emit=console.print)


@bench_app.command("rules")
@clear_errors
def bench_rules_command(
    states: Annotated[int, typer.Option(help="Random casebook states to evaluate.")] = 100_000,
    study: Annotated[Path, typer.Option(help="A study whose edit checks are measured too.")] = DEMO_STUDY,
) -> None:
    """Edit checks: evals/s against simpleeval, cel-python and hand-written lambdas (25 built-in checks with
    hand-written twins), then the study's own checks against simpleeval and cel-python."""
    bench = load_benchmark("rules_bench")
    bench.run(console.print, states=states)
    checks, symbols = study_checks(load_study_file(study))
    console.print(f"--- {study}: {len(checks)} edit checks of the study")
    bench.run(console.print, states=states, checks=checks, symbols=symbols)


@bench_app.command("pages")
@clear_errors
def bench_pages_command(
    subjects: Annotated[int, typer.Option(help="Subjects in the measured study.")] = 2_000,
    events: Annotated[int, typer.Option(help="Events in its ledger (about).")] = 5_000_000,
    baseline: Annotated[int, typer.Option(help="Subjects in the baseline study (same casebooks).")] = 100,
    templates: Annotated[int, typer.Option(help="Subjects simulated through the handlers, then replicated.")] = 12,
    samples: Annotated[int, typer.Option(help="Requests per page and study.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the demo simulation of the template subjects.")] = 7,
    postgres: Annotated[
        str | None, typer.Option(help="PostgreSQL server URL (scratch databases are created and dropped).")
    ] = None,
) -> None:
    """Subject list, study home per role, SDV list and one casebook over HTTP (p50/p99) at --subjects/--events
    against --baseline subjects, served by `trialstack serve`, on SQLite (and PostgreSQL with --postgres)."""
    load_benchmark("pages_bench").run(
        subjects=subjects, events=events, baseline=baseline, templates=templates, seed=seed, samples=samples,
        postgres_server=postgres, emit=console.print,
    )  # fmt: skip


@bench_app.command("irt")
@clear_errors
def bench_irt_command(
    subjects: Annotated[int, typer.Option(help="Subjects already allocated when the timing starts.")] = 10_000,
    randomizations: Annotated[int, typer.Option(help="Minimization randomizations timed.")] = 2_000,
) -> None:
    """Minimization randomizations/s (pure decide + evolve) with --subjects already allocated, against
    random.choice; and the time per randomization at a tenth as many allocated."""
    load_benchmark("irt_bench").run(subjects=subjects, randomizations=randomizations, emit=console.print)


@bench_app.command("labs")
@clear_errors
def bench_labs_command(
    rows: Annotated[int, typer.Option(help="Results in the generated central-lab CSV.")] = 1_000_000,
    subjects: Annotated[int, typer.Option(help="Subjects the results are spread over.")] = 2_000,
    postgres: Annotated[
        str | None, typer.Option(help="PostgreSQL server URL (a scratch database is created and dropped).")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
) -> None:
    """A lab CSV imported into SQLite and PostgreSQL (seconds, rows/s, peak RSS) against a plain batched INSERT of
    the same rows, and the peak RSS of a quarter of the file (memory flat)."""
    load_benchmark("labs_bench").run(rows=rows, subjects=subjects, postgres_server=postgres or None, emit=console.print)


@bench_app.command("relay")
@clear_errors
def bench_relay_command(
    events: Annotated[int, typer.Option(help="Ledger events relayed (and published plainly) per backend.")] = 20_000,
    batch: Annotated[int, typer.Option(help="Relay batch (two in flight; as many for plain nats-py).")] = 1_000,
    rounds: Annotated[int, typer.Option(help="Rounds of each; the best of each is compared.")] = 3,
    lag_events: Annotated[int, typer.Option(help="Events appended one per commit while the relay polls.")] = 500,
    lag_rate: Annotated[float, typer.Option(help="Appends per second during the lag measurement.")] = 100.0,
    poll_interval: Annotated[float, typer.Option(help="The polling relay's interval in seconds.")] = 0.25,
    nats_url: Annotated[str, typer.Option(envvar="TRIALSTACK_NATS_URL", help="NATS server URL.")] = (
        "nats://127.0.0.1:4222"
    ),
    postgres: Annotated[
        str | None, typer.Option(help="PostgreSQL server URL (a scratch database is created and dropped).")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
) -> None:
    """The NATS JetStream relay: events/s against plain nats-py publishing of the same messages, and the lag from
    commit to a JetStream consumer (p50/p99) with `trialstack relay` polling, on SQLite and PostgreSQL."""
    load_benchmark("relay_bench").run(
        events=events, batch=batch, rounds=rounds, lag_events=lag_events, lag_rate=lag_rate,
        poll_interval=poll_interval, nats_url=nats_url, postgres_server=postgres or None, emit=console.print,
    )  # fmt: skip


def study_checks(definition: StudyDefinition) -> tuple[list[tuple[str, str]], dict[str, RuleType]]:
    """Every edit check of a study with one symbol table for all (checks whose bare names clash are left out)."""
    symbols = study_symbols(definition)
    merged: dict[str, RuleType] = {}
    checks: list[tuple[str, str]] = []
    for check in definition.all_edit_checks():
        local = symbols.for_form(check.form)
        if any(merged.get(name, kind) != kind for name, kind in local.items()):
            continue
        merged.update(local)
        checks.append((check.id, check.expression))
    return checks, merged


def load_benchmark(name: str) -> Any:
    """Import `benchmarks/<name>.py` from the source checkout (benchmarks are not part of the installed package)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "benchmarks" / f"{name}.py").exists():
        raise TrialStackError(f"benchmarks/{name}.py not found beside {root}: run from a source checkout")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"benchmarks.{name}")


def main() -> None:
    app()
