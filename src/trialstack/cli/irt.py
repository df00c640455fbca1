"""`trialstack irt`: kit lists and randomization lists for the supply manager, the system's stock check, and a
blinded status of randomization and supply.

Registering kits and lists changes what subjects receive, so the operator signs in as themselves (password from a
hidden prompt or stdin) and must hold `supply.manage` at every site of the study (a supply manager); the sign-in,
the change and the sign-out are all in the ledger. A file is checked whole before anything is written: a bad one is
refused with one line naming the file, the line, the column and why, exit code 2. Nothing printed here names a
treatment: kit counts are per lot, lists are described by their entries per stratum and their SHA-256.
"""

from __future__ import annotations

import secrets
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from trialstack.bootstrap import Platform, bootstrap
from trialstack.cli.common import DbOption, clear_errors, console
from trialstack.errors import InvalidInput, NotFound
from trialstack.identity.authentication import IDENTITY_SYSTEM, login, logout, user_actor
from trialstack.identity.policy import Action, Forbidden, Grant, Principal, authorize
from trialstack.irt import handlers as irt
from trialstack.irt.imports import KIT_COLUMNS, import_kit_list, import_randomization_list, parse_kit_list
from trialstack.irt.readmodel import kits, shipments, subjects, unblindings
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.protocol.readmodel import version_in_force
from trialstack.protocol.version import StudyVersion

irt_app = typer.Typer(name="irt", help="Randomization and drug supply (IRT).", no_args_is_help=True)
kits_app = typer.Typer(name="kits", help="Kit lists at a depot.", no_args_is_help=True)
list_app = typer.Typer(name="list", help="Randomization lists, sealed in the vault.", no_args_is_help=True)
irt_app.add_typer(kits_app, name="kits")
irt_app.add_typer(list_app, name="list")

StudyOption = Annotated[str, typer.Option("--study", help="The study.")]
DepotOption = Annotated[str, typer.Option("--depot", help="The depot the kits are at (a depot of the study).")]
AsOption = Annotated[str, typer.Option("--as", help="Your username (supply.manage at every site of the study).")]
StdinOption = Annotated[bool, typer.Option("--password-stdin", help="Read your password from the first line of stdin.")]
FileArgument = Annotated[Path, typer.Argument(help="The CSV file.")]
KIT_STATUSES = ("at_depot", "in_transit", "available", "quarantined", "dispensed", "returned", "rejected", "missing")


def _entropy() -> bytes:
    return secrets.token_bytes(32)


def _study(platform: Platform, study: str) -> StudyVersion:
    with platform.engine.connect() as connection:
        version = version_in_force(connection, study)
    if version is None:
        raise NotFound(f"study {study} is not loaded", field="study")
    return version


def _manages_supply(principal: Principal, version: StudyVersion) -> Grant:
    """The grant allowing `supply.manage` at every site of the study (a supply manager), or Forbidden."""
    study = version.definition.study.id
    granted: list[Grant] = []
    for site in version.definition.sites:
        try:
            granted.append(authorize(principal, Action.SUPPLY_MANAGE, study, site.id))
        except Forbidden:
            raise Forbidden(
                f"{principal.username} may not {Action.SUPPLY_MANAGE.value} at every site of study {study} "
                f"(not at site {site.id}): kit and randomization lists are the supply manager's"
            ) from None
    if not granted:
        raise Forbidden(f"study {study} has no sites: nobody manages its supply")
    return granted[0]


@contextmanager
def _signed_in(platform: Platform, study: str, username: str, password_stdin: bool) -> Iterator[Actor]:
    """Sign in as `username`, check `supply.manage` at every site, yield the actor; always sign out."""
    version = _study(platform, study)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else typer.prompt("Password", hide_input=True)
    with platform.unit_of_work(IDENTITY_SYSTEM) as uow:
        session = login(uow, username, password)
        uow.commit()
    try:
        grant = _manages_supply(session.principal, version)
        yield Actor(f"user:{username}", grant.role.value)
    finally:
        with platform.unit_of_work(user_actor(username)) as uow:
            logout(uow, session.session_id)
            uow.commit()


def _read(file: Path) -> tuple[bytes, str]:
    """The file's bytes and its name as given (every refusal names it)."""
    try:
        return file.read_bytes(), str(file)
    except OSError as error:
        raise InvalidInput(f"{file}: cannot be read ({error.strerror or error})", field="file") from None


def _with_column(error: InvalidInput) -> InvalidInput:
    """A kit list's refusal names the line; add the column (the field the check is about) when it does not."""
    if error.field in KIT_COLUMNS and "column" not in error.message:
        return InvalidInput(f"{error.message} (column {error.field})", field=error.field)
    return error


def _print_kits(events: Sequence[RecordedEvent], where: str) -> None:
    registered = [e.payload for e in events if e.event_type == "KitsRegistered"]
    lots = Counter(kit["lot"] for payload in registered for kit in payload["kits"])
    numbers = [kit["kit"] for payload in registered for kit in payload["kits"]]
    console.print(f"registered {len(numbers)} kits at depot {where}", highlight=False)
    for payload in registered:
        console.print(f"SHA-256 {payload['checksum']}", highlight=False)
    for lot, count in sorted(lots.items()):
        console.print(f"  lot {lot}: {count} kits", highlight=False)


@kits_app.command("import")
@clear_errors
def kits_import_command(
    file: FileArgument,
    study: StudyOption,
    depot: DepotOption,
    as_user: AsOption,
    checksum: Annotated[
        str | None, typer.Option("--checksum", help="The SHA-256 the vendor sent with the file (checked if given).")
    ] = None,
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Register the packaging vendor's kit list (CSV: kit, treatment, lot, expiry YYYY-MM-DD) at a depot."""
    data, name = _read(file)
    parse_kit_list(data, name)  # a file that is not a kit list is refused before the password is asked
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with _signed_in(platform, study, as_user, password_stdin) as actor, platform.unit_of_work(actor) as uow:
            try:
                events = import_kit_list(uow, study, depot, data, name, checksum)
            except InvalidInput as error:
                raise _with_column(error) from None
            uow.commit()
    finally:
        platform.close()
    _print_kits(events, f"{depot} from {name}")


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{option} {text!r} is not a date (YYYY-MM-DD)", field=option) from None


@kits_app.command("generate")
@clear_errors
def kits_generate_command(
    study: StudyOption,
    depot: DepotOption,
    per_arm: Annotated[int, typer.Option("--per-arm", min=1, help="Kits of each treatment.")],
    lot: Annotated[str, typer.Option("--lot", help="The lot number of every kit.")],
    expiry: Annotated[str, typer.Option("--expiry", help="Expiry date of the lot, YYYY-MM-DD.")],
    first_number: Annotated[int, typer.Option("--first-number", min=1, help="The first kit number.")],
    as_user: AsOption,
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Register a generated kit list: --per-arm kits of each treatment, numbered from --first-number, the numbers
    handed out to treatments at random from a fresh secret seed."""
    expires = _day(expiry, "--expiry")
    if not lot.strip():
        raise InvalidInput("--lot is empty", field="lot")
    platform = bootstrap(database_url=db, migrate=True)
    try:
        quantities = {arm.id: per_arm for arm in _study(platform, study).definition.arms}
        with _signed_in(platform, study, as_user, password_stdin) as actor, platform.unit_of_work(actor) as uow:
            events = irt.generate_kit_list(uow, study, depot, quantities, lot.strip(), expires, first_number, _entropy)
            uow.commit()
    finally:
        platform.close()
    last = first_number + per_arm * len(quantities) - 1
    _print_kits(events, f"{depot}, numbered {first_number} to {last}")


def _print_list(events: Sequence[RecordedEvent]) -> None:
    for event in events:
        if event.event_type != "RandomizationListGenerated":
            continue
        payload = event.payload
        strata: dict[str, int] = payload["strata"]
        console.print(
            f"sealed randomization list {payload['list_id']} ({payload['source']}, {payload['scheme']}): "
            f"{sum(strata.values())} entries in {len(strata)} strata",
            highlight=False,
        )
        if payload.get("file_checksum"):
            console.print(f"file SHA-256 {payload['file_checksum']} (as given)", highlight=False)
        console.print(f"sealed list SHA-256 {payload['checksum']}", highlight=False)
        if payload.get("seed_commitment"):
            console.print(f"seed commitment {payload['seed_commitment']}", highlight=False)
        for stratum, entries in sorted(strata.items()):
            console.print(f"  {stratum}: {entries} entries", highlight=False)


@list_app.command("generate")
@clear_errors
def list_generate_command(
    study: StudyOption,
    as_user: AsOption,
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Seal a new randomization list for every stratum of the protocol under a fresh secret seed (the first
    randomization does this by itself; a later list extends each stratum)."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        platform.check_vault()
        with _signed_in(platform, study, as_user, password_stdin) as actor, platform.unit_of_work(actor) as uow:
            events = irt.generate_randomization_list(uow, study, _entropy)
            uow.commit()
    finally:
        platform.close()
    _print_list(events)


@list_app.command("import")
@clear_errors
def list_import_command(
    file: FileArgument,
    study: StudyOption,
    checksum: Annotated[str, typer.Option("--checksum", help="The SHA-256 the statistician sent separately.")],
    as_user: AsOption,
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Seal the statistician's pre-generated list (CSV: stratum, arm, optional position); refused unless the
    file's SHA-256 is the one given."""
    data, name = _read(file)
    platform = bootstrap(database_url=db, migrate=True)
    try:
        platform.check_vault()
        with _signed_in(platform, study, as_user, password_stdin) as actor, platform.unit_of_work(actor) as uow:
            events = import_randomization_list(uow, study, data, name, checksum)
            uow.commit()
    finally:
        platform.close()
    _print_list(events)


@irt_app.command("resupply")
@clear_errors
def resupply_command(study: StudyOption, db: DbOption = None) -> None:
    """The system checks every site's stock now and requests the shipments due (as after each dispensing)."""
    platform = bootstrap(database_url=db, migrate=True)
    triggered: list[RecordedEvent] = []
    try:
        with platform.unit_of_work(irt.SYSTEM_IRT) as uow:
            sites = [site.id for site in irt.study_version_of(uow, study).definition.sites]
        for site_id in sites:
            with platform.unit_of_work(irt.SYSTEM_IRT) as uow:
                triggered += irt.resupply_site(uow, study, site_id)
                uow.commit()
    finally:
        platform.close()
    _print_resupply(study, sites, triggered)


def _print_resupply(study: str, sites: Sequence[str], triggered: Sequence[RecordedEvent]) -> None:
    shipped = {e.payload["shipment_id"]: e.payload for e in triggered if e.event_type == "ShipmentRequested"}
    checks = [e.payload for e in triggered if e.event_type == "ResupplyTriggered"]
    if not checks:
        console.print(f"{study}: {len(sites)} sites checked, no resupply due", highlight=False)
        return
    for check in checks:
        line = f"site {check['site_id']}: resupply ({check['reason']})"
        shipment = shipped.get(check["shipment_id"] or "")
        if shipment is not None:
            line += f", shipment {shipment['shipment_id']} of {len(shipment['kits'])} kits from {shipment['depot']}"
        if check["shortfall"]:
            line += f"; the depot is short of {check['shortfall']} kits"
        console.print(line, highlight=False)
    console.print(f"{study}: {len(sites)} sites checked, {len(checks)} resupplies triggered", highlight=False)


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table | str:
    """A table under its title; the title alone when there is nothing to list."""
    if not rows:
        return title
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    return table


@irt_app.command("status")
@clear_errors
def status_command(study: StudyOption, db: DbOption = None) -> None:
    """A blinded summary: subjects randomized per stratum, kits per location and status, open shipments and
    emergency unblindings. No treatment is shown."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with platform.engine.connect() as connection:
            version = version_in_force(connection, study)
            if version is None:
                raise NotFound(f"study {study} is not loaded", field="study")
            randomized = Counter(
                str(row["stratum"]) for row in subjects(connection, study, unblinded=False) if row["number"]
            )
            stock = Counter((str(k["location"]), str(k["status"])) for k in kits(connection, study, unblinded=False))
            pending = [s for s in shipments(connection, study) if s["status"] != "received"]
            broken = unblindings(connection, study)
    finally:
        platform.close()
    depots = [depot.id for depot in version.definition.supply.depots] if version.definition.supply else []
    places = depots + sorted({location for location, _status in stock} - set(depots)) if stock else []
    statuses = [status for status in KIT_STATUSES if any(s == status for _l, s in stock)]
    columns = ("shipment_id", "depot", "site_id", "kits", "status", "requested_on", "dispatched_on", "reason")
    unblinding_columns = ("number", "subject_id", "site_id", "username", "role", "unblinded_on", "reason")
    console.print(f"{study}: IRT status (blinded)", highlight=False)
    for shown in (
        _table(f"Randomized: {sum(randomized.values())} subjects", ("stratum", "subjects"), sorted(randomized.items())),
        _table(
            f"Kits: {sum(stock.values())}",
            ("location", *(s.replace("_", " ") for s in statuses)),
            [(place, *(stock[(place, status)] for status in statuses)) for place in places],
        ),
        _table(
            f"Open shipments: {len(pending)}",
            ("shipment", "from", "to site", "kits", "status", "requested", "dispatched", "reason"),
            [[s[column] for column in columns] for s in pending],
        ),
        _table(
            f"Emergency unblindings: {len(broken)}",
            ("number", "subject", "site", "by", "role", "on", "reason"),
            [[u[column] for column in unblinding_columns] for u in broken],
        ),
    ):
        console.print(shown, highlight=False)
