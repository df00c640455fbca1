"""`trialstack bdd`: run a study's Gherkin specification, measure what it covers, document the step library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from trialstack.bdd.coverage import Coverage
from trialstack.bdd.docs import by_topic, steps_markdown
from trialstack.bdd.gate import GateResult, run_gate
from trialstack.bdd.html import html_report
from trialstack.bdd.junit import junit_xml
from trialstack.bdd.library import default_library
from trialstack.bdd.registry import strip_keyword
from trialstack.bdd.results import PASSED, RunResult, ScenarioResult
from trialstack.bdd.runner import DEFAULT_SEED, prepare, run_specification
from trialstack.cli.common import clear_errors, console, err_console, progress_bar
from trialstack.errors import InvalidInput, NotFound
from trialstack.protocol.version import StudyVersion, study_version
from trialstack.standards.loader import load_study_file

app = typer.Typer(
    name="bdd",
    help="A study's Gherkin specification: run it against the study build, coverage, the step library.",
    no_args_is_help=True,
)

StudyArgument = Annotated[
    Path, typer.Argument(help="A study directory (study.yaml + features/) or a study definition file.")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the correlation ids (same seed, same ledgers).")]
MARK = {"passed": "[green]✓[/green]", "failed": "[red]✗[/red]", "error": "[red]![/red]"}


def study_paths(path: Path) -> tuple[Path, Path]:
    """(study file, features directory) of a study directory or of a study file."""
    study_file = path / "study.yaml" if path.is_dir() else path
    if not study_file.is_file():
        raise NotFound(f"no study definition at {study_file}")
    features = study_file.parent / "features"
    if not features.is_dir():
        raise NotFound(f"no features/ directory beside {study_file}")
    return study_file, features


def _run(path: Path, seed: int, *, quiet: bool = False) -> RunResult:
    study_file, features = study_paths(path)
    version = study_version(load_study_file(study_file))
    specification = prepare(version, features)
    definition = version.definition
    console.print(
        f"{definition.study.id} protocol {definition.study.protocol_version}, StudyVersion {version.hash}, "
        f"{len(specification.scenarios)} scenarios",
        highlight=False,
    )
    shown: list[str] = []

    def show(result: ScenarioResult) -> None:
        if quiet:
            return
        file = result.scenario.location.file
        if not shown or shown[-1] != file:
            shown.append(file)
            console.print(f"[bold]{escape(result.scenario.feature)}[/bold] ({file})", highlight=False)
        console.print(f"  {MARK[result.status]} {escape(result.scenario.name)}", highlight=False)
        if result.status != PASSED:
            print_failure(result, indent="      ")

    return run_specification(specification, seed=seed, on_scenario=show)


def print_failure(result: ScenarioResult, indent: str = "  ", out: Console = console) -> None:
    failure = result.failure
    if failure is None:
        return
    out.print(f"{indent}[red]{escape(str(failure.step))}[/red]  ({failure.step.location})", highlight=False)
    out.print(f"{indent}{escape(failure.message)}", highlight=False)
    if failure.expected or failure.actual:
        out.print(f"{indent}expected: {escape(failure.expected)}", highlight=False)
        out.print(f"{indent}actual:   {escape(failure.actual)}", highlight=False)
    events = result.action_events
    out.print(f"{indent}events produced:{'' if events else ' none'}", highlight=False)
    for event in events:
        out.print(f"{indent}  {escape(str(event))}", highlight=False)


def coverage_line(coverage: Coverage) -> str:
    return " · ".join(f"{s.name} {s.covered}/{s.total} ({s.percent:.0f}%)" for s in coverage.sections)


def summary(run: RunResult) -> None:
    verdict = "[green]passed[/green]" if run.passed else "[red]FAILED[/red]"
    console.print(
        f"{verdict}: {run.count('passed')} passed, {run.count('failed')} failed, {run.count('error')} in error, "
        f"{len(run.scenarios)} scenarios in {run.seconds:.1f} s · coverage: {coverage_line(run.coverage)}",
        highlight=False,
    )


@app.command("run")
@clear_errors
def run_command(
    study: StudyArgument,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML evidence report here.")] = None,
    seed: SeedOption = DEFAULT_SEED,
) -> None:
    """Run every scenario in a throwaway ledger through the real handlers; exit 0 only if all pass."""
    run = _run(study, seed)
    if junit is not None:
        junit.write_text(junit_xml(run), encoding="utf-8")
    if html is not None:
        html.write_text(html_report(run), encoding="utf-8")
    summary(run)
    if not run.passed:
        raise typer.Exit(1)


@app.command("coverage")
@clear_errors
def coverage_command(
    study: StudyArgument,
    fail_under: Annotated[
        float | None, typer.Option("--fail-under", help="Exit 1 if edit checks, visits or criteria are below PCT.")
    ] = None,
    seed: SeedOption = DEFAULT_SEED,
) -> None:
    """Which edit checks, visits and eligibility criteria the scenarios exercise, and which they do not."""
    run = _run(study, seed, quiet=True)
    for section in run.coverage.sections:
        console.print(
            f"[bold]{section.name}[/bold]: {section.covered} of {section.total} ({section.percent:.1f}%)",
            highlight=False,
        )
        for line in section.untested:
            console.print(f"  not exercised: {line.id}  {escape(line.label)}", highlight=False)
    if not run.passed:
        err_console.print(f"[red]{len(run.failures)} scenarios fail[/red]: these figures come from a failing run")
        raise typer.Exit(1)
    below = run.coverage.below(fail_under) if fail_under is not None else []
    if below:
        names = ", ".join(f"{s.name} {s.percent:.1f}%" for s in below)
        err_console.print(f"[red]coverage below {fail_under:g}%[/red]: {names}", highlight=False)
        raise typer.Exit(1)


@app.command("steps")
def steps_command(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print docs/bdd-steps.md.")] = False,
) -> None:
    """List the step library: each pattern with an example (the docs page with --markdown)."""
    if markdown:
        typer.echo(steps_markdown(), nl=False)
        return
    for topic, definitions in by_topic(default_library()):
        console.print(f"[bold underline]{topic}[/bold underline]", highlight=False)
        for definition in definitions:
            console.print(f"  [bold]{escape(definition.pattern)}[/bold]", highlight=False)
            console.print(f"      {escape(strip_keyword(definition.example))}", highlight=False)


def report_gate(gate: GateResult) -> None:
    """What `study load` prints about the specification gate."""
    if gate.problem is not None:
        err_console.print(f"[red]specification gate: the features cannot run[/red] ({gate.features_dir})")
        for problem in gate.problem.problems:
            err_console.print(f"  {escape(str(problem))}", highlight=False)
        return
    if gate.run is None:
        return
    if gate.passed:
        console.print(f"specification gate passed: {len(gate.run.scenarios)} scenarios", highlight=False)
        return
    err_console.print(
        f"[red]specification gate failed[/red]: {len(gate.run.failures)} of {len(gate.run.scenarios)} scenarios",
        highlight=False,
    )
    for result in gate.run.failures:
        err_console.print(f"  ✗ {escape(result.scenario.title)} ({result.scenario.location})", highlight=False)
        print_failure(result, indent="      ", out=err_console)


def gate_or_exit(study_file: Path, version: StudyVersion, override: bool, reason: str | None) -> GateResult | None:
    """Run the specification gate for `study load`: exit 1 when it fails and is not overridden with a reason."""
    if override and not (reason or "").strip():
        raise InvalidInput("--override-gate needs --reason: say why this version may go live with failing scenarios")
    with progress_bar("specification gate", None) as advance:
        gate = run_gate(study_file, version, lambda _result: advance(1))
    if gate is None:
        return None
    report_gate(gate)
    if not gate.passed and not override:
        err_console.print(
            "refused: the StudyVersion is not published. Fix the study or its features, or publish anyway with "
            '--override-gate --reason "..." (recorded in the study\'s ledger).',
            highlight=False,
        )
        raise typer.Exit(1)
    return gate
