"""`trialstack study load`: validate a definition and publish it as the StudyVersion in force."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from trialstack.bdd.gate import record_override
from trialstack.bootstrap import bootstrap
from trialstack.cli.bdd import gate_or_exit
from trialstack.cli.common import DbOption, clear_errors, console
from trialstack.cli.study import PathArgument, ReportOption, read_study
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version


def operator_actor() -> Actor:
    """Who runs a CLI command: the operating-system user, acting as a study builder."""
    return Actor(id=f"os:{getpass.getuser()}", role="study_builder")


@clear_errors
def load_command(
    path: PathArgument,
    db: DbOption = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why a new version is published (required for amendments).")
    ] = None,
    override_gate: Annotated[
        bool, typer.Option("--override-gate", help="Publish although its features fail (needs --reason; recorded).")
    ] = False,
    report: ReportOption = None,
) -> None:
    """Validate and publish a study definition; loading identical content again changes nothing.

    With a `features/` directory beside the study file, its scenarios run first and a failure refuses the load.
    """
    check = read_study(path, report)
    definition = check.definition_or_raise()
    version = study_version(definition)
    gate = gate_or_exit(path, version, override_gate, reason)
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with platform.unit_of_work(operator_actor()) as uow:
            outcome = publish_study_version(
                uow, PublishStudyVersion(version, source_format=check.format, source_name=path.name, reason=reason)
            )
            if gate is not None and not gate.passed and outcome.published:
                record_override(uow, gate, definition.study.id, reason)
            uow.commit()
    finally:
        platform.close()
    study = definition.study
    if outcome.published:
        console.print(
            f"published {study.id} protocol version {study.protocol_version} ({version.hash}) at study_seq "
            f"{outcome.study_seq}",
            highlight=False,
        )
    else:
        console.print(f"{study.id}: version {version.hash} is already in force; nothing written", highlight=False)
    if gate is not None and not gate.passed and outcome.published:
        console.print("specification gate overridden: SpecificationGateOverridden recorded with the reason")
