"""`trialstack demo`: load the demo study and simulate months of realistic site, monitor and data-manager work."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import make_url

from trialstack.bootstrap import bootstrap
from trialstack.capture.readmodel import list_subjects
from trialstack.cli.common import DbOption, clear_errors, console, progress_bar
from trialstack.cli.demo_users import create_demo_staff
from trialstack.cli.study_publish import operator_actor
from trialstack.clock import FixedClock
from trialstack.errors import TrialStackError
from trialstack.identity.policy import Role
from trialstack.ledger.envelope import Actor
from trialstack.ledger.projections import projections_checksum
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.settings import Settings
from trialstack.simulation.amendment import with_consent_version
from trialstack.simulation.ecoa import DIARY_EVERY
from trialstack.simulation.simulator import DEFAULT_START, Amendment, Simulation
from trialstack.standards.loader import check_study_file

DEMO_STUDY = Path(__file__).resolve().parents[3] / "studies" / "demo" / "study.yaml"
AMENDMENT_REASON = "Amendment 1: new risk information (potassium)"
SHOWN_PARTICIPANTS = 5
ECOA_EVENTS = (
    "QuestionnaireSubmitted", "QuestionnaireScored", "DiaryEntryMissed", "ComplianceAlertRaised", "ClinicalAlertRaised",
    "ClinicalAlertAcknowledged",
)  # fmt: skip
IRT_EVENTS = (
    "RandomizationListGenerated", "SubjectRandomized", "KitDispensed", "KitReturned", "ShipmentRequested",
    "ShipmentReceived", "KitsQuarantined", "KitsReleased", "ResupplyTriggered", "EmergencyUnblinded",
)  # fmt: skip
LAB_EVENTS = (
    "LabResultReceived", "LabResultCorrected", "LabResultUnmatched", "LabResultAssigned", "LabResultRejected",
    "LabValueGraded", "LabAlertRaised", "LabAlertConfirmed", "LabAlertDismissed", "ReconciliationDiscrepancyFound",
    "ReconciliationDiscrepancyResolved",
)  # fmt: skip
CONSENT_EVENTS = (
    "ParticipantActivated", "ConsentSigned", "ConsentCountersigned", "ConsentRecordedOnPaper", "ReconsentRequired",
    "ConsentWithdrawn",
)  # fmt: skip


def consent_amendment(study: Path, definition: StudyDefinition) -> Amendment | None:
    """Amendment 1 of a study with an ICF whose version 2.0 text ships beside it (the demo study): ICF 2.0 in
    force from the day it is published, with a new ethics approval; every subject on study must consent again."""
    text = study.parent / "consent" / "icf-2.0-en.md"
    document = definition.consent_document("ICF")
    if document is None or document.version("2.0") is not None or not text.is_file():
        return None

    def amend(current: StudyDefinition, day: date) -> tuple[StudyDefinition, str]:
        ethics = f"EC-{day.year}-{day:%m%d}-A1"
        texts = {"en": text.read_text(encoding="utf-8")}
        return with_consent_version(current, "ICF", "2.0", day, ethics, texts), AMENDMENT_REASON

    return amend


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _remove_sqlite_file(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise TrialStackError("--fresh only removes an SQLite database file; drop a PostgreSQL database yourself")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)


@clear_errors
def demo_command(
    db: DbOption = None,
    subjects: Annotated[int, typer.Option("--subjects", min=1, max=5000, help="How many subjects to screen.")] = 40,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same study.")] = 7,
    study: Annotated[Path, typer.Option("--study", help="The study definition to simulate.")] = DEMO_STUDY,
    fresh: Annotated[bool, typer.Option("--fresh", help="Delete the SQLite database file first.")] = False,
) -> None:
    """Load a study and simulate its conduct through the real command handlers (deterministic per seed)."""
    settings = Settings.from_env(db)
    if fresh:
        _remove_sqlite_file(settings.database_url)
    check = check_study_file(study)
    definition = check.definition_or_raise()
    version = study_version(definition)
    platform = bootstrap(settings, clock=FixedClock(DEFAULT_START), migrate=True)
    try:
        platform.check_vault()
        study_id = definition.study.id
        with platform.engine.connect() as connection:
            if list_subjects(connection, study_id):
                raise TrialStackError(
                    f"{settings.database_url} already holds {study_id} subjects: use a new --db or --fresh"
                )
        with platform.unit_of_work(operator_actor()) as uow:
            publish_study_version(uow, PublishStudyVersion(version, check.format, study.name))
            users, staff = create_demo_staff(uow, study_id, [site.id for site in definition.sites])
            uow.commit()
        investigators = {site: Actor(f"user:{name}", role) for name, _, role, sites in users
                         if role == Role.INVESTIGATOR.value for site in sites}  # fmt: skip
        staff = replace(staff, investigators=investigators)
        amendment = consent_amendment(study, definition)
        simulation = Simulation(platform, study_id, seed=seed, subjects=subjects, staff=staff, amendment=amendment)
        with progress_bar(f"simulating {study_id}", None) as advance:
            stats = simulation.run(advance)
        checksum = projections_checksum(platform.engine, platform.wiring)
    finally:
        platform.close()
    refused = sum(simulation.refusals.values())
    console.print(
        f"{study_id}: {subjects} subjects simulated from seed {seed} "
        f"({stats['commands']} commands accepted, {refused} refused)"
    )
    for name in ("SubjectEnrolled", "SubjectScreenFailed", "SubjectWithdrawn", "SubjectCompleted", "CasebookLocked"):
        console.print(f"  {name}: {stats[name]}")
    for name in ("EditCheckFailed", "QueryOpened", "QueryAnswered", "QueryClosed", "SourceDataVerified"):
        console.print(f"  {name}: {stats[name]}")
    if definition.consent:
        for name in CONSENT_EVENTS:
            console.print(f"  {name}: {stats[name]}")
    if simulation.questionnaires.active:
        desk = simulation.questionnaires.stats
        for name in ECOA_EVENTS:
            console.print(f"  {name}: {stats[name]}")
        console.print(
            f"  diaries kept by {desk.keepers} of {desk.enrolled} enrolled subjects (participants with an account "
            f"and every {_ordinal(DIARY_EVERY)} enrolled subject); {desk.offline} entries sent offline hours later, "
            f"{desk.resends} resent (no-op)",
            highlight=False,
        )
    if simulation.pharmacy.randomizes:
        for name in IRT_EVENTS:
            console.print(f"  {name}: {stats[name]}")
    if simulation.laboratory.active:
        for name in LAB_EVENTS:
            console.print(f"  {name}: {stats[name]}")
        lab = simulation.laboratory.stats
        console.print(
            f"  central laboratory: {lab['lab files']} deliveries (HL7 ORU and CSV files), {lab['triaged']} results "
            f"triaged, {lab['samples lost']} samples lost (raised as missing by the fortnightly sweep)",
            highlight=False,
        )
    console.print(f"  KriThresholdCrossed: {stats['KriThresholdCrossed']} (KRIs checked weekly)", highlight=False)
    console.print(f"refused commands: {refused}", highlight=False)
    for reason, count in sorted(simulation.refusals.items(), key=lambda entry: (-entry[1], entry[0])):
        console.print(f"  {count:>5}  {reason}", highlight=False, markup=False)
    console.print(f"projections checksum: {checksum}")
    console.print(f"personal-data vault master key: {platform.vault.source.describe()}", highlight=False)
    table = Table("username", "password", "role", "sites", title="Demo users (demo databases only)")
    for username, password, role, sites in users:
        table.add_row(username, password, role, ", ".join(sites))
    console.print(table)
    participants = simulation.consent.participants
    if participants:
        title = f"Participant accounts ({len(participants)} opened from invitations; the first {SHOWN_PARTICIPANTS})"
        table = Table("username", "password", "subject", title=title)
        for participant in participants[:SHOWN_PARTICIPANTS]:
            table.add_row(participant.username, participant.password, participant.subject_id)
        console.print(table)
