"""`trialstack bench load`: many clients saving forms over HTTP, against as many clients doing bare commits.

In one run, on one PostgreSQL server (a scratch database, dropped after):
1. the capture benchmark's study (one visit, one 20-item form with 30 edit checks) is published, one coordinator gets
   an API token, and one subject per client is screened with its visit date (through the handlers, not timed);
2. `trialstack serve` runs in its own process on a free 127.0.0.1 port; each client (a thread with its own HTTP
   connection) saves its own subject's form again and again with changed values: PUT .../forms/V1.F20 with 20 items,
   each answered with the edit-check results and the queries it opened or closed;
3. the baseline: as many threads, each on its own PostgreSQL connection, committing a one-row INSERT as often.

Printed: saves/s and per-request p50/p99 against the bare commits' commits/s and p50/p99 (`synchronous_commit` on
for both: the server's own setting, checked).
"""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

from benchmarks.capture_bench import ITEMS, SITE, STUDY, bench_definition, percentile, prepare_subjects
from benchmarks.common import Emit, scratch_postgres, serving
from trialstack.bootstrap import bootstrap
from trialstack.clock import FixedClock
from trialstack.errors import TrialStackError
from trialstack.identity import commands as identity_commands
from trialstack.identity import handlers as identity
from trialstack.identity.policy import Role
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version

USERNAME = "bench-coordinator"
ADMIN = Actor("os:bench", "admin")
FORM = "V1.F20"


@dataclass
class Figures:
    """Latencies of every operation of one phase and its wall time (first start to last end)."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds > 0 else float("inf")


def run_clients(clients: int, work: Callable[[int], Callable[[], None]], rounds: int) -> Figures:
    """`clients` threads released together; each prepares its operation with `work(n)`, then runs it `rounds` times."""
    figures = Figures()
    lock = threading.Lock()
    operations = [work(n) for n in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def client(operation: Callable[[], None]) -> None:
        mine: list[float] = []
        barrier.wait()
        try:
            for _ in range(rounds):
                start = time.perf_counter()
                operation()
                mine.append(time.perf_counter() - start)
        except Exception as error:  # reported with the figures; the other clients go on
            with lock:
                figures.failures.append(f"{type(error).__name__}: {error}")
        with lock:
            figures.latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(operation,)) for operation in operations]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    figures.seconds = time.perf_counter() - started
    return figures


def prepare(url: str, clients: int) -> tuple[str, list[str]]:
    """The study, one coordinator with an API token, one subject per client. Returns (token, subjects)."""
    platform = bootstrap(database_url=url, clock=FixedClock(datetime(2026, 1, 6, tzinfo=UTC)), migrate=True)
    try:
        with platform.unit_of_work(ADMIN) as uow:
            publish_study_version(uow, PublishStudyVersion(study_version(bench_definition()), "yaml", "bench"))
            identity.register_user(
                uow, identity_commands.RegisterUser(USERNAME, "Bench Coordinator", secrets.token_urlsafe(16))
            )
            identity.grant_role(
                uow, identity_commands.GrantRole(USERNAME, STUDY, Role.STUDY_COORDINATOR, frozenset({SITE}))
            )
            token = identity.issue_api_token(uow, USERNAME, study_id=STUDY).secret
            uow.commit()
        return token, prepare_subjects(platform, clients)
    finally:
        platform.close()


def form_saver(client: httpx.Client, subject: str) -> Callable[[], None]:
    """One client: its own HTTP connection; each call saves the form with every value changed."""
    url = f"/api/v1/studies/{STUDY}/subjects/{subject}/forms/{FORM}"
    count = iter(range(1_000_000))

    def save() -> None:
        n = next(count)
        items = {f"V{i:02d}": {"value": str(100 + (n * 7 + i * 13) % 300)} for i in range(ITEMS)}
        response = client.put(url, json={"items": items, "reason": "re-measured"})
        if response.status_code != 200:
            raise TrialStackError(f"save answered {response.status_code}: {response.text[:300]}")

    return save


@contextmanager
def bare_committers(url: str) -> Iterator[Callable[[int], Callable[[], None]]]:
    """Clients of the baseline: each its own connection, each call one INSERT and its COMMIT."""
    connections: list[psycopg.Connection[tuple[object, ...]]] = []

    def work(n: int) -> Callable[[], None]:
        connection = psycopg.connect(url)
        connections.append(connection)

        def commit() -> None:
            connection.execute("INSERT INTO bench_bare (client, note) VALUES (%s, %s)", (n, "x" * 40))
            connection.commit()

        return commit

    try:
        yield work
    finally:
        for connection in connections:
            connection.close()


def _describe(label: str, figures: Figures, baseline: Figures | None = None) -> str:
    p50, p99 = percentile(figures.latencies, 0.5), percentile(figures.latencies, 0.99)
    text = f"{label}: {figures.rate:,.0f}/s, p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms"
    if baseline is not None:
        base_p50, base_p99 = percentile(baseline.latencies, 0.5), percentile(baseline.latencies, 0.99)
        text += (
            f" ({figures.rate / baseline.rate:.3f}× bare commits/s; p50 {p50 / base_p50:.2f}×,"
            f" p99 {p99 / base_p99:.2f}× bare)"
        )
    return text


def run(clients: int = 50, saves: int = 20, postgres_server: str | None = None, emit: Emit = print) -> None:
    if not postgres_server:
        raise TrialStackError("bench load runs against PostgreSQL: give --postgres")
    previous_key = os.environ.get("TRIALSTACK_VAULT_KEY")
    os.environ["TRIALSTACK_VAULT_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    try:
        with scratch_postgres(postgres_server) as url, tempfile.TemporaryDirectory() as directory:
            token, subjects = prepare(url, clients)
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("CREATE TABLE bench_bare (id bigserial PRIMARY KEY, client int, note text)")
                durability = admin.execute("SHOW synchronous_commit").fetchone()
                assert durability is not None, "SHOW answers one row"
            emit(f"postgresql load: {clients} clients, {saves} operations each (synchronous_commit={durability[0]})")
            with bare_committers(url) as work:
                bare = run_clients(clients, work, saves)
            emit(_describe(f"postgresql {clients} clients bare INSERT+COMMIT", bare))
            with serving(url, Path(directory) / "serve.log", startup_seconds=120) as base, ExitStack() as http:
                headers = {"Authorization": f"Bearer {token}"}
                savers = [
                    form_saver(http.enter_context(httpx.Client(base_url=base, headers=headers, timeout=300)), subject)
                    for subject in subjects
                ]
                run_clients(clients, lambda n: savers[n], 1)  # first entry, connections and caches warm
                figures = run_clients(clients, lambda n: savers[n], saves)
            emit(_describe(f"postgresql {clients} clients saving a 20-item form over HTTP", figures, bare))
            for failure in sorted(set(bare.failures + figures.failures)):
                emit(f"postgresql load: FAILED {failure}")
    finally:
        if previous_key is None:
            os.environ.pop("TRIALSTACK_VAULT_KEY", None)
        else:
            os.environ["TRIALSTACK_VAULT_KEY"] = previous_key
