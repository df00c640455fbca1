"""`trialstack relay [--once]`: publish every committed event to NATS JetStream (docs/operations.md)."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer
from rich.markup import escape

from trialstack.bootstrap import bootstrap
from trialstack.cli.common import DbOption, clear_errors, console, err_console
from trialstack.integration.nats_relay import (
    DEFAULT_NATS_URL,
    DUPLICATE_WINDOW_SECONDS,
    NatsRelay,
    RelayConfig,
    RelayStats,
    RelayUnavailable,
)

ONCE_RETRIES = 5
"""Retries `--once` makes after failed attempts before it gives up (exit 1) when --retries is not given."""


@clear_errors
def relay_command(
    db: DbOption = None,
    once: Annotated[bool, typer.Option("--once", help="Publish everything pending, then exit.")] = False,
    nats_url: Annotated[
        str, typer.Option("--nats-url", envvar="TRIALSTACK_NATS_URL", help="NATS server URL.")
    ] = DEFAULT_NATS_URL,
    namespace: Annotated[
        str,
        typer.Option(
            "--namespace",
            envvar="TRIALSTACK_NATS_NAMESPACE",
            help="Prefix of subjects (NS.trialstack.…), stream names (NS_TRIALSTACK) and the relay position, so "
            "several relays (tests, staging) share one NATS server without sharing streams.",
        ),
    ] = "",
    stream: Annotated[
        str | None, typer.Option("--stream", envvar="TRIALSTACK_NATS_STREAM", help="Stream of blinded events.")
    ] = None,
    unblinded_stream: Annotated[
        str | None,
        typer.Option(
            "--unblinded-stream",
            envvar="TRIALSTACK_NATS_UNBLINDED_STREAM",
            help="Stream of events revealing treatment.",
        ),
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=100_000, help="Events per JetStream round and position commit.")
    ] = 1_000,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.01, help="Seconds between reads of the ledger when idle.")
    ] = 0.25,
    retries: Annotated[
        int | None,
        typer.Option(
            "--retries",
            min=0,
            help=f"Retries before giving up with exit 1 (default {ONCE_RETRIES} with --once, else no limit).",
        ),
    ] = None,
    retry_delay: Annotated[
        float, typer.Option("--retry-delay", min=0.001, help="First backoff delay in seconds (doubles, up to 30 s).")
    ] = 0.5,
    duplicate_window: Annotated[
        float,
        typer.Option("--duplicate-window", min=1, help="Seconds JetStream de-duplicates over (new streams only)."),
    ] = DUPLICATE_WINDOW_SECONDS,
) -> None:
    """Publish every committed event to NATS JetStream, in study order, at least once (de-duplicated by id):
    trialstack.<study>.<context>.<EventType>, and events revealing treatment only under trialstack-unblinded.
    Without --once it polls the ledger until SIGTERM or Ctrl-C."""
    config = RelayConfig(
        url=nats_url, namespace=namespace, stream=stream, unblinded_stream=unblinded_stream, batch=batch,
        poll_interval=poll_interval, retries=ONCE_RETRIES if retries is None and once else retries,
        retry_delay=retry_delay, duplicate_window=duplicate_window,
    )  # fmt: skip
    platform = bootstrap(database_url=db)
    relay = NatsRelay(platform.engine, config, warn=lambda text: err_console.print(escape(text), highlight=False))
    where = (
        f"{platform.engine.url.render_as_string(hide_password=True)} -> {config.url}"
        f" (streams {config.stream_name}, {config.unblinded_stream_name})"
    )
    if not once:
        console.print(f"relay: {where}, polling every {poll_interval:g} s; SIGTERM or Ctrl-C stops", highlight=False)
    try:
        stats = asyncio.run(_run(relay, once))
    except RelayUnavailable as exc:
        err_console.print(f"[red]relay: {escape(exc.message)}[/red]", highlight=False)
        raise typer.Exit(1) from None
    finally:
        platform.close()
    console.print(summary(stats, where), highlight=False)


async def _run(relay: NatsRelay, once: bool) -> RelayStats:
    """The relay with SIGTERM and SIGINT setting its stop event: the batch in flight finishes and is acknowledged."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    try:
        return await relay.run(once=once, stop=stop)
    finally:
        for number in signals:
            loop.remove_signal_handler(number)


def summary(stats: RelayStats, where: str) -> str:
    studies = ", ".join(f"{study} {count}" for study, count in sorted(stats.by_study.items())) or "none pending"
    return (
        f"relayed {stats.relayed} events ({stats.unblinded} to the unblinded stream,"
        f" {stats.duplicates} duplicates dropped by JetStream) {where}; per study: {studies}"
    )
