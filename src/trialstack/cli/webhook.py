"""`trialstack webhook`: a study's webhook subscriptions, the deliverer, dead letters and replays.

Changing who receives a study's events is signed in (`--as USER`, password from a hidden prompt or stdin) with
`webhook.manage` in the study; an unblinded subscription also needs `allocation.read` at every site of the study.
The sign-in, the change and the sign-out are in the ledger. A URL or filter that cannot be subscribed is refused
before anything is written, in one line naming the URL and why, exit code 2.

`list` and `dead-letters` show no secret and no event payload; `deliver` runs as the system (an operator's
process, like `trialstack ecoa sweep`), once (`--once`) or until interrupted.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer

from trialstack.bootstrap import Platform, bootstrap
from trialstack.cli.common import DbOption, clear_errors, console
from trialstack.clock import utc_timestamp
from trialstack.errors import NotFound
from trialstack.identity.authentication import IDENTITY_SYSTEM, login, logout, user_actor
from trialstack.identity.policy import Action, Principal, authorize, authorize_at_every_site
from trialstack.integration.webhooks import commands as cmd
from trialstack.integration.webhooks import delivery, handlers
from trialstack.integration.webhooks.model import check_event_types, check_url
from trialstack.integration.webhooks.readmodel import SubscriptionRow, subscription, subscriptions
from trialstack.integration.webhooks.settings import RetryPolicy, allowed_hosts
from trialstack.ledger.database import WRITE_OPTION
from trialstack.ledger.envelope import Actor
from trialstack.protocol.readmodel import version_in_force

webhook_app = typer.Typer(name="webhook", help="Webhooks: subscriptions, delivery, dead letters.", no_args_is_help=True)

StudyOption = Annotated[str, typer.Option("--study", help="The study.")]
IdOption = Annotated[str, typer.Option("--id", help="The subscription (wh_…).")]
AsOption = Annotated[str, typer.Option("--as", help="Your username (webhook.manage in the study).")]
StdinOption = Annotated[bool, typer.Option("--password-stdin", help="Read your password from the first line of stdin.")]


@contextmanager
def _signed_in(platform: Platform, study: str, username: str, password_stdin: bool) -> Iterator[Principal]:
    """Sign in as `username`, check webhook.manage in the study, yield the principal; always sign out."""
    with platform.engine.connect() as connection:
        if version_in_force(connection, study) is None:
            raise NotFound(f"study {study} is not loaded", field="study")
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else typer.prompt("Password", hide_input=True)
    with platform.unit_of_work(IDENTITY_SYSTEM) as uow:
        session = login(uow, username, password)
        uow.commit()
    try:
        authorize(session.principal, Action.WEBHOOK_MANAGE, study)
        yield session.principal
    finally:
        with platform.unit_of_work(user_actor(username)) as uow:
            logout(uow, session.session_id)
            uow.commit()


def _actor(principal: Principal, study: str) -> Actor:
    grant = authorize(principal, Action.WEBHOOK_MANAGE, study)
    return Actor(f"user:{principal.username}", grant.role.value)


def _found(platform: Platform, study: str, subscription_id: str) -> SubscriptionRow:
    with platform.engine.connect() as connection:
        found = subscription(connection, study, subscription_id)
    if found is None:
        raise NotFound(f"webhook {subscription_id} not found in study {study}", field="subscription_id")
    return found


@webhook_app.command("add")
@clear_errors
def add_command(
    study: StudyOption,
    url: Annotated[str, typer.Option("--url", help="Where to POST: http(s) on an allowed host.")],
    as_user: AsOption,
    event_type: Annotated[
        list[str] | None, typer.Option("--event-type", help="An event type to send (repeat it); default: every one.")
    ] = None,
    unblinded: Annotated[
        bool, typer.Option("--unblinded", help="Send events that reveal treatment too (allocation.read everywhere).")
    ] = False,
    description: Annotated[str, typer.Option("--description", help="What the receiver is.")] = "",
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Subscribe a URL to the study's events; prints the signing secret once."""
    types = tuple(event_type or ["*"])
    hosts = allowed_hosts()
    check_url(url, hosts)  # refused before the sign-in: nothing is written for a URL that cannot be subscribed
    check_event_types(types, blinded=not unblinded)
    platform = bootstrap(database_url=db, migrate=True)
    try:
        platform.check_vault()
        with _signed_in(platform, study, as_user, password_stdin) as principal:
            if unblinded:
                with platform.engine.connect() as connection:
                    version = version_in_force(connection, study)
                sites = [site.id for site in version.definition.sites] if version is not None else []
                authorize_at_every_site(principal, Action.ALLOCATION_READ, study, sites)
            command = cmd.SubscribeWebhook(url, types, unblinded, description)
            with platform.unit_of_work(_actor(principal, study)) as uow:
                made = handlers.subscribe(uow, study, as_user, command, allowed_hosts=hosts)
                uow.commit()
        payload = made.events[0].payload
        blinding = "blinded" if payload["blinded"] else "UNBLINDED"
        console.print(
            f"webhook {made.subscription_id} subscribed to study {study}: {payload['url']} ({blinding}; event "
            f"types: {', '.join(payload['event_types'])})",
            highlight=False,
        )
        console.print(f"secret (shown once, verifies webhook-signature): {made.secret}", highlight=False)
    finally:
        platform.close()


@webhook_app.command("list")
@clear_errors
def list_command(
    study: Annotated[str | None, typer.Option("--study", help="One study (default: every study).")] = None,
    db: DbOption = None,
) -> None:
    """Subscriptions with where their delivery stands (never a secret)."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        with platform.engine.connect() as connection:
            found = subscriptions(connection, study)
            if not found:
                console.print("no webhooks" + (f" in study {study}" if study else ""), highlight=False)
            for sub in found:
                status = delivery.delivery_status(connection, sub)
                blinding = "blinded" if sub.blinded else "UNBLINDED"
                console.print(
                    f"{sub.study_id} {sub.subscription_id} {sub.status} {blinding} {sub.url} "
                    f"[{', '.join(sub.event_types)}] by {sub.created_by}",
                    highlight=False,
                )
                retry = (
                    f"; retrying {status['retrying_seq']} (attempt {status['attempts']} failed: "
                    f"{status['last_error']}; next at {status['next_attempt_at']})"
                    if status["retrying_seq"] is not None
                    else ""
                )
                replay = f"; replay from {status['replay_from']} asked" if status["replay_from"] is not None else ""
                console.print(
                    f"  position {status['position']} ({status['behind']} events after it){retry}{replay}; "
                    f"dead letters {status['dead_letters']}, replaying {status['replaying']}",
                    highlight=False,
                )
    finally:
        platform.close()


@webhook_app.command("disable")
@clear_errors
def disable_command(
    study: StudyOption,
    subscription_id: IdOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit trail).")],
    as_user: AsOption,
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Stop delivering to a subscription; its dead letters stay listed."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        _found(platform, study, subscription_id)
        with (
            _signed_in(platform, study, as_user, password_stdin) as principal,
            platform.unit_of_work(_actor(principal, study)) as uow,
        ):
            events = handlers.disable(uow, study, as_user, cmd.DisableWebhook(subscription_id, reason))
            uow.commit()
        said = "disabled" if events else "was already disabled"
        console.print(f"webhook {subscription_id} of study {study} {said}", highlight=False)
    finally:
        platform.close()


@webhook_app.command("deliver")
@clear_errors
def deliver_command(
    once: Annotated[bool, typer.Option("--once", help="One pass over every subscription, then exit.")] = False,
    study: Annotated[str | None, typer.Option("--study", help="One study (default: every study).")] = None,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between passes (without --once).")] = 1.0,
    base_seconds: Annotated[
        float | None, typer.Option("--base-seconds", help="First backoff (TRIALSTACK_WEBHOOK_BASE_SECONDS, 10).")
    ] = None,
    max_delay_seconds: Annotated[
        float | None,
        typer.Option("--max-delay-seconds", help="Longest backoff (TRIALSTACK_WEBHOOK_MAX_DELAY_SECONDS, 3600)."),
    ] = None,
    max_attempts: Annotated[
        int | None, typer.Option("--max-attempts", help="Attempts before a dead letter (…_MAX_ATTEMPTS, 12).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds to wait for an answer (…_TIMEOUT_SECONDS, 10).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Subscriptions delivered at once.")] = 8,
    db: DbOption = None,
) -> None:
    """Deliver the subscriptions' events, signed, in order, retrying with backoff; dead-letter after the last."""
    policy = RetryPolicy.from_env(
        base_seconds=base_seconds, cap_seconds=max_delay_seconds, max_attempts=max_attempts, timeout_seconds=timeout
    )
    platform = bootstrap(database_url=db, migrate=True)
    try:
        platform.check_vault()
        deliverer = delivery.Deliverer(platform.engine, platform.vault, policy=policy, clock=platform.clock,
                                       workers=workers)  # fmt: skip
        if once:
            report = deliverer.run_once(study)
            for sub in report.subscriptions:
                _print_report(sub)
            console.print(
                f"{len(report.subscriptions)} webhooks: {report.total('delivered')} delivered, "
                f"{report.total('failed')} to retry, {report.total('dead_lettered')} dead-lettered",
                highlight=False,
            )
            return
        stop = threading.Event()

        def stopping(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, stopping) if main else None
        console.print(f"delivering webhooks every {interval:g} s (Ctrl-C stops)", highlight=False)
        try:
            deliverer.run(stop, interval, _print_report, study)
        except KeyboardInterrupt:
            stop.set()
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    finally:
        platform.close()


def _print_report(report: delivery.SubscriptionReport) -> None:
    parts = [f"{report.delivered} delivered"]
    if report.failed:
        parts.append(f"{report.failed} to retry")
    if report.dead_lettered:
        parts.append(f"{report.dead_lettered} dead-lettered")
    if report.waiting:
        parts.append("waiting for a retry")
    if report.busy:
        parts.append("busy in another deliverer")
    if report.error:
        parts.append(f"error: {report.error}")
    console.print(f"{report.study_id} {report.subscription_id}: {', '.join(parts)}", highlight=False)


@webhook_app.command("dead-letters")
@clear_errors
def dead_letters_command(study: StudyOption, subscription_id: IdOption, db: DbOption = None) -> None:
    """Events a subscription gave up on (or asked to be sent again), with attempts and the last error."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        sub = _found(platform, study, subscription_id)
        with platform.engine.connect() as connection:
            letters = delivery.dead_letters(connection, sub)
        if not letters:
            console.print(f"webhook {subscription_id} has no dead letters", highlight=False)
        for row in letters:
            console.print(
                f"{row['study_seq']} {row['event_type']} {row['state']}: {row['attempts']} attempts, last "
                f"{row['last_error']} ({row['dead_at']})",
                highlight=False,
            )
    finally:
        platform.close()


@webhook_app.command("replay")
@clear_errors
def replay_command(
    study: StudyOption,
    subscription_id: IdOption,
    as_user: AsOption,
    seq: Annotated[list[int] | None, typer.Option("--seq", help="A dead letter's study_seq (repeat it).")] = None,
    all_dead: Annotated[bool, typer.Option("--all", help="Every dead letter of the subscription.")] = False,
    from_seq: Annotated[
        int | None, typer.Option("--from", help="Every event it receives from this study_seq on, again.")
    ] = None,
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Send dead letters again (before newer events), or restart the subscription at a position."""
    if sum((bool(seq), all_dead, from_seq is not None)) != 1:
        raise typer.BadParameter("give exactly one of --seq, --all or --from")
    platform = bootstrap(database_url=db, migrate=True)
    try:
        _found(platform, study, subscription_id)
        with _signed_in(platform, study, as_user, password_stdin) as principal:
            actor = _actor(principal, study)
            at = utc_timestamp(platform.clock.now())
            with platform.engine.connect().execution_options(**{WRITE_OPTION: True}) as connection, connection.begin():
                if from_seq is not None:
                    was = delivery.replay_from(connection, study, subscription_id, from_seq)
                    said = f"will send every event it receives from study_seq {from_seq} on again (it was at {was})"
                else:
                    wanted = delivery.replay_dead_letters(connection, study, subscription_id,
                                                          None if all_dead else seq, actor.id, at)  # fmt: skip
                    listed = ", ".join(str(s) for s in wanted) or "none"
                    said = f"will send {len(wanted)} dead letter(s) again first: study_seq {listed}"
        console.print(f"webhook {subscription_id} {said} (at the deliverer's next pass)", highlight=False)
    finally:
        platform.close()
