"""`trialstack bench pages`: the pages people open most, over HTTP, at 2,000 subjects and 5 M events against 100.

One run, per backend:
1. A handful of template subjects go through the real handlers: the demo study, its demo users, the demo
   simulation (screening, visits, forms, typos and their queries, SDV), then months of corrections and
   re-verification of one vital-signs form each, until each casebook is as long as the target's average.
2. Two databases start as copies of it; subjects are added by replicating the template subjects' streams (their
   subject stream and query streams) under the next screening numbers, as the ledger store's bulk append: payloads
   stay canonical, every event gets its real hash in the study's chain (so `trialstack verify` passes), personal
   values are sealed again in the vault under the new subject. Then `rebuild` replays every read model.
3. Both databases are served by `trialstack serve` on free 127.0.0.1 ports; a demo user per role signs in to each,
   and the pages are requested alternately from the two servers (same machine load for both): p50 and p99 of the
   subject list (first page), the study home per role, the SDV list and one casebook.

The small database is the baseline: the target is a p99 at most 1.5x the 100-subject figure, and at most 150 ms.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import make_url

from benchmarks.common import Emit, serving, timed
from trialstack.bootstrap import Platform, bootstrap
from trialstack.capture import commands as cmd
from trialstack.capture import handlers, personal
from trialstack.capture.readmodel import list_subjects
from trialstack.capture.refs import subject_stream_id
from trialstack.cli.demo import DEMO_STUDY
from trialstack.cli.demo_users import create_demo_staff
from trialstack.clock import FixedClock, utc_timestamp
from trialstack.errors import TrialStackError
from trialstack.ledger import store
from trialstack.ledger.chain import chain_hash, envelope_bytes
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.ledger.projections import rebuild
from trialstack.ledger.vault import KEY_ENV, new_master_key
from trialstack.ledger.verify import verify
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.settings import Settings
from trialstack.simulation.simulator import DEFAULT_START, Simulation
from trialstack.standards.loader import load_study_file

STUDY = "HTN-201"
BUILDER = Actor("user:bench-builder", "study_builder")
BATCH = 50_000
PAGE_SIZE = 50
TARGET_P99_MS = 150.0
TARGET_RATIO = 1.5
Progress = Callable[[str], object]


@dataclass
class Templates:
    """The database every benchmark database starts from, and what the runs need to know about it."""

    url: str
    key: str
    users: list[tuple[str, str, str, tuple[str, ...]]]
    subjects: list[tuple[str, str]]
    """(subject id, site) of the template subjects, in subject order."""
    events: int
    casebook: str
    """The subject whose casebook page is measured: the template with the longest stream."""


@dataclass
class Served:
    label: str
    subjects: int
    events: int
    url: str
    clients: dict[str, httpx.Client] = field(default_factory=dict)


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _settings(url: str, key: str) -> Settings:
    return Settings(database_url=url, vault_key=key)


# 1. Template subjects through the real handlers.


def _correction_rounds(platform: Platform, clock: FixedClock, subject: str, length: int, staff: Any) -> str | None:
    """Correct one dated vital-signs form of the subject again and again (re-verified by the monitor every other
    correction), through the real handlers, until its stream holds `length` events; None, or why it stopped."""
    with platform.engine.connect() as connection:
        casebook = handlers.read_casebook(connection, platform.cache, STUDY, subject, platform.vault)
    forms = [key for key, state in casebook.forms.items() if key.form_id == "VS" and "PULSE" in state.items]
    if not forms:
        return "no vital signs recorded"
    form = sorted(forms)[-1]
    coordinator = staff.coordinator(casebook.site_id)
    step = 0
    while casebook.version < length:
        step += 1
        clock.advance(timedelta(minutes=20))
        items = casebook.forms[form].items
        up = step % 2 == 1
        values = {"PULSE": cmd.ItemInput(str(int(items["PULSE"].value or "70") + (1 if up else -1)))}
        if "WEIGHT" in items and items["WEIGHT"].value is not None:
            values["WEIGHT"] = cmd.ItemInput(f"{float(items['WEIGHT'].value) + (0.1 if up else -0.1):.1f}")
        if step % 4 in (1, 2) and "SYSBP" in items and items["SYSBP"].value is not None:
            values["SYSBP"] = cmd.ItemInput(str(int(items["SYSBP"].value) + (1 if up else -1)))
        try:
            with platform.unit_of_work(coordinator) as uow:
                handlers.save_form(uow, STUDY, cmd.SaveForm(subject, form, values, reason="Transcription corrected"))
                uow.commit()
        except TrialStackError as refusal:
            return str(refusal)
        if step % 4 == 2:
            with suppress(TrialStackError), platform.unit_of_work(staff.monitor) as uow:
                handlers.verify_source_data(uow, STUDY, cmd.VerifySourceData(subject, form))
                uow.commit()
        with platform.engine.connect() as connection:
            casebook = handlers.read_casebook(connection, platform.cache, STUDY, subject, platform.vault)
    return None


def _instances(index: int, templates: int, subjects: int) -> int:
    """How many subjects of a `subjects`-subject study are copies of template `index` (itself included)."""
    groups, rest = divmod(subjects - templates, templates)
    return 1 + groups + (1 if index < rest else 0)


def _stream_lengths(platform: Platform, subjects: list[str]) -> dict[str, int]:
    """Events per template subject: its subject stream and its query streams."""
    with platform.engine.connect() as connection:
        found = _template_events(connection, subjects)
    lengths = dict.fromkeys(subjects, 0)
    for owner, _event in found:
        lengths[owner] += 1
    return lengths


def build_templates(url: str, templates: int, seed: int, subjects: int, events: int, emit: Emit) -> Templates:
    """The template subjects, lengthened so that `subjects` copies of them make about `events` events."""
    key = new_master_key()
    definition = load_study_file(DEMO_STUDY)
    clock = FixedClock(DEFAULT_START)
    platform = bootstrap(_settings(url, key), clock=clock, migrate=True)
    try:
        with platform.unit_of_work(BUILDER) as uow:
            publish_study_version(uow, PublishStudyVersion(study_version(definition), "yaml", DEMO_STUDY.name))
            users, staff = create_demo_staff(uow, STUDY, [site.id for site in definition.sites])
            uow.commit()
        Simulation(platform, STUDY, seed=seed, subjects=templates, staff=staff).run()
        with platform.engine.connect() as connection:
            chosen = [(str(r["subject_id"]), str(r["site_id"])) for r in list_subjects(connection, STUDY)]
        names = [subject for subject, _ in chosen]
        target = {subject: events // subjects for subject in names}
        stopped: dict[str, str] = {}
        for _round in range(2):
            for subject in names:
                if subject not in stopped:
                    why = _correction_rounds(platform, clock, subject, target[subject], staff)
                    if why is not None:
                        stopped[subject] = why
            lengths = _stream_lengths(platform, names)
            with platform.engine.connect() as connection:
                others = store.count_events(connection) - sum(lengths.values())
            copies = {subject: _instances(i, len(names), subjects) for i, subject in enumerate(names)}
            short = events - others - sum(copies[s] * lengths[s] for s in names)
            growing = [s for s in names if s not in stopped]
            if short <= 0 or not growing:
                break
            extra = -(-short // sum(copies[s] for s in growing))
            for subject in growing:
                target[subject] += extra
        with platform.engine.connect() as connection:
            total = store.count_events(connection)
    finally:
        platform.close()
    longest = max(lengths, key=lambda s: (lengths[s], s))
    emit(
        f"templates: {len(names)} subjects through the real handlers (demo simulation, seed {seed}, then"
        f" corrections and re-verification): {min(lengths.values())}–{max(lengths.values())} events each"
        f" (subject and query streams), {total:,} events in the ledger"
    )
    for subject, why in sorted(stopped.items()):
        emit(f"  {subject} takes no more corrections at {lengths[subject]} events: {why}")
    return Templates(url, key, users, chosen, total, longest)


# 2. Replicas through the ledger store's bulk path.


def _template_events(connection: Any, subjects: list[str]) -> list[tuple[str, RecordedEvent]]:
    """Every event of the template subjects' streams and of their query streams, in study order."""
    owners = {subject_stream_id(STUDY, s): s for s in subjects}
    prefixes = {f"{STUDY}/Q-{s}-": s for s in subjects}
    found: list[tuple[str, RecordedEvent]] = []
    for event in store.iter_study(connection, STUDY):
        owner = owners.get(event.stream_id) if event.stream_type == "subject" else None
        if owner is None and event.stream_type == "query":
            owner = next((s for p, s in prefixes.items() if event.stream_id.startswith(p)), None)
        if owner is not None:
            found.append((owner, event))
    return found


def _sealed(events: list[tuple[str, RecordedEvent]]) -> dict[str, list[tuple[str, str]]]:
    """Per template subject, the (vault reference, keyed hash) pairs its events carry, in order."""
    fields = {model.__name__: pairs for model, pairs in personal.SEALED_FIELDS.items()}
    sealed: dict[str, list[tuple[str, str]]] = {}
    for owner, event in events:
        if event.stream_type != "subject" or event.event_type not in fields:
            continue
        payload = event.payload
        for name, digest in fields[event.event_type]:
            if payload.get(digest):
                sealed.setdefault(owner, []).append((str(payload[name]), str(payload[digest])))
    return sealed


class Replicator:
    """Appends copies of the template subjects under new subject ids, continuing the study's hash chain."""

    def __init__(self, platform: Platform, templates: Templates) -> None:
        self.platform = platform
        with platform.engine.connect() as connection:
            self.events = _template_events(connection, [s for s, _ in templates.subjects])
            self.seq, self.prev = store.lock_study_head(connection, STUDY)
            counts = {site: 0 for _, site in templates.subjects}
            for row in list_subjects(connection, STUDY):
                counts[str(row["site_id"])] = counts.get(str(row["site_id"]), 0) + 1
            self.plain = self._reveal(connection, _sealed(self.events))
        self.next_number = counts
        self.site = dict(templates.subjects)
        self.order = [s for s, _ in templates.subjects]
        self._correlations: dict[tuple[str | None, str], str] = {}

    def _reveal(
        self, connection: Any, sealed: dict[str, list[tuple[str, str]]]
    ) -> dict[str, list[tuple[str, str, str]]]:
        plain: dict[str, list[tuple[str, str, str]]] = {}
        for owner, pairs in sealed.items():
            values = self.platform.vault.reveal(
                connection, personal.vault_owner(STUDY, owner), [ref for ref, _ in pairs]
            )
            plain[owner] = [(ref, digest, str(values[ref])) for ref, digest in pairs]
        return plain

    def _new_ids(self, count: int) -> dict[str, str]:
        names: dict[str, str] = {}
        for template in self.order[:count]:
            site = self.site[template]
            self.next_number[site] += 1
            names[template] = f"{site}-{self.next_number[site]:03d}"
        return names

    def append(self, subjects: int, progress: Progress | None = None) -> int:
        """Add `subjects` replicas (whole groups of the templates, the last one cut short); returns events added."""
        added = 0
        batch: list[tuple[Any, ...]] = []
        at = utc_timestamp(self.platform.clock.now())
        while subjects > 0:
            names = self._new_ids(min(subjects, len(self.order)))
            subjects -= len(names)
            with self.platform.engine.begin() as connection:
                swaps = self._swaps(connection, names, at)
            seqs: dict[int, int] = {}
            self._correlations.clear()
            for owner, event in self.events:
                new = names.get(owner)
                if new is None:
                    continue
                batch.append(self._copy(event, owner, new, swaps[owner], seqs))
                added += 1
                if len(batch) >= BATCH:
                    self._flush(batch)
                    batch = []
                    if progress is not None:
                        progress(f"{added:,} events replicated")
        if batch:
            self._flush(batch)
        return added

    def _swaps(self, connection: Any, names: dict[str, str], at: str) -> dict[str, list[tuple[str, str]]]:
        """Per template, the quoted strings to replace in its payloads: ids, and each sealed value sealed again."""
        swaps: dict[str, list[tuple[str, str]]] = {}
        for template, new in names.items():
            pairs = [(f'"{template}"', f'"{new}"'), (f'"Q-{template}-', f'"Q-{new}-')]
            sealed = self.plain.get(template, [])
            if sealed:
                fresh = self.platform.vault.seal(
                    connection, personal.vault_owner(STUDY, new), [plain for _, _, plain in sealed], at
                )
                for (ref, digest, _), again in zip(sealed, fresh, strict=True):
                    pairs += [(f'"{ref}"', f'"{again.ref}"'), (f'"{digest}"', f'"{again.digest}"')]
            swaps[template] = pairs
        return swaps

    def _copy(
        self, event: RecordedEvent, template: str, new: str, swaps: list[tuple[str, str]], seqs: dict[int, int]
    ) -> tuple[Any, ...]:
        payload = event.payload_json
        for old, replacement in swaps:
            if old in payload:
                payload = payload.replace(old, replacement)
        self.seq += 1
        seqs[event.study_seq] = self.seq
        cause = event.causation_id
        if cause is not None and cause.startswith(f"{STUDY}#") and int(cause.split("#")[1]) in seqs:
            cause = f"{STUDY}#{seqs[int(cause.split('#')[1])]}"
        correlation = self._correlations.get((event.correlation_id, new))
        if correlation is None:
            correlation = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event.correlation_id}/{new}"))
            self._correlations[(event.correlation_id, new)] = correlation
        copied = event._replace(
            id=None,
            study_seq=self.seq,
            stream_id=event.stream_id.replace(f"/{template}", f"/{new}", 1).replace(f"/Q-{template}-", f"/Q-{new}-"),
            payload_json=payload,
            correlation_id=correlation,
            causation_id=cause,
            prev_hash=self.prev,
        )
        fields = copied._asdict()
        for name in ("id", "hash"):
            fields.pop(name)
        self.prev = chain_hash(self.prev, envelope_bytes(**fields))
        return tuple(copied._replace(hash=self.prev))[1:]

    def _flush(self, rows: list[tuple[Any, ...]]) -> None:
        with self.platform.engine.begin() as connection:
            store.insert_events(connection, rows)
            store.write_study_head(connection, STUDY, self.seq, self.prev)


def _copy_database(source: str, target: str) -> None:
    if source.startswith("sqlite"):
        src = make_url(source).database or ""
        dst = make_url(target).database or ""
        for suffix in ("-wal", "-shm"):
            Path(f"{dst}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(src, dst)
        return
    admin = source.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{target.rsplit("/", 1)[1]}" TEMPLATE "{source.rsplit("/", 1)[1]}"')


def _checkpoint(url: str) -> None:
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(make_url(url).database or "") as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def build_study(templates: Templates, url: str, subjects: int, emit: Emit) -> int:
    """A copy of the templates grown to `subjects` subjects, read models rebuilt, chain verified; its events."""
    _checkpoint(templates.url)
    _copy_database(templates.url, url)
    platform = bootstrap(_settings(url, templates.key), clock=FixedClock(DEFAULT_START + timedelta(days=400)))
    try:
        replicator = Replicator(platform, templates)
        extra = subjects - len(templates.subjects)
        seconds = timed(lambda: replicator.append(extra, lambda text: emit(f"  {text}")))
        with platform.engine.connect() as connection:
            events = store.count_events(connection)
        emit(f"  {subjects:,} subjects: {extra:,} replicas appended in {seconds:.0f} s; {events:,} events")
        replayed = 0

        def replay() -> None:
            nonlocal replayed
            replayed = rebuild(platform.engine, platform.wiring)

        emit(f"  rebuild: {timed(replay):.0f} s for {replayed:,} events")
        with platform.engine.connect() as connection:
            started = time.perf_counter()
            report = verify(connection)
            elapsed = time.perf_counter() - started
        verdict = "ok" if report.ok else f"BROKEN at {report.broken[0].study_id}#{report.broken[0].study_seq}"
        emit(f"  verify: {verdict}, {report.events:,} events in {elapsed:.0f} s")
        if not report.ok:
            raise TrialStackError("the benchmark ledger does not verify")
    finally:
        platform.close()
    _checkpoint(url)
    return events


# 3. Serving and measuring.


def _signed_in(base: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=60)
    answer = client.post("/login", data={"username": username, "password": password, "next": "/"})
    if answer.status_code != 303:
        raise TrialStackError(f"{username} could not sign in: {answer.status_code}")
    return client


def _get(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    answer = client.get(path)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise TrialStackError(f"GET {path} answered {answer.status_code}")
    return elapsed


@dataclass(frozen=True)
class Probe:
    name: str
    username: str
    path: str


def _probes(templates: Templates) -> list[Probe]:
    base = f"/studies/{STUDY}"
    monitor = "demo-monitor"
    probes = [
        Probe("subject list, first page", monitor, f"{base}/subjects"),
        Probe("SDV list, first page", monitor, f"{base}/sdv"),
        Probe(f"casebook {templates.casebook}", monitor, f"{base}/subjects/{templates.casebook}"),
    ]
    seen: set[str] = set()
    for username, _password, role, _sites in templates.users:
        if role not in seen:
            seen.add(role)
            probes.append(Probe(f"home as {role}", username, base))
    return probes


def measure(small: Served, large: Served, templates: Templates, samples: int, warmup: int, emit: Emit) -> bool:
    """Every probe on both servers, alternating request by request; one line per probe. True if all on target."""
    passwords = {username: password for username, password, _role, _sites in templates.users}
    on_target = True
    for probe in _probes(templates):
        timings: dict[str, list[float]] = {small.label: [], large.label: []}
        usable = True
        for served in (small, large):
            if probe.username not in served.clients:
                served.clients[probe.username] = _signed_in(served.url, probe.username, passwords[probe.username])
            if served.clients[probe.username].get(probe.path).status_code != 200:
                usable = False
        if not usable:
            emit(f"{probe.name}: not open to this role, skipped")
            continue
        for _ in range(warmup):
            for served in (small, large):
                _get(served.clients[probe.username], probe.path)
        for _ in range(samples):
            for served in (small, large):
                timings[served.label].append(_get(served.clients[probe.username], probe.path))
        base_p50, base_p99 = _percentile(timings[small.label], 0.5), _percentile(timings[small.label], 0.99)
        p50, p99 = _percentile(timings[large.label], 0.5), _percentile(timings[large.label], 0.99)
        ratio = p99 / base_p99
        ok = ratio <= TARGET_RATIO and p99 * 1e3 <= TARGET_P99_MS
        on_target = on_target and ok
        emit(
            f"{probe.name}: {large.subjects:,} subjects p50 {p50 * 1e3:.1f} ms p99 {p99 * 1e3:.1f} ms"
            f" | {small.subjects:,} subjects p50 {base_p50 * 1e3:.1f} ms p99 {base_p99 * 1e3:.1f} ms"
            f" | p99 {ratio:.2f}× baseline {'ok' if ok else 'OVER TARGET'}"
            f" (mean {statistics.mean(timings[large.label]) * 1e3:.1f} ms)"
        )
    return on_target


def bench_backend(
    label: str,
    scratch: Callable[[str], AbstractContextManager[str]],
    subjects: int,
    events: int,
    baseline: int,
    templates_count: int,
    seed: int,
    samples: int,
    emit: Emit,
    workdir: Path,
) -> None:
    with ExitStack() as stack:
        base_url = stack.enter_context(scratch("templates"))
        emit(f"--- {label}: {subjects:,} subjects / {events:,} events against {baseline:,} subjects")
        started = time.perf_counter()
        templates = build_templates(base_url, templates_count, seed, subjects, events, lambda text: emit(f"  {text}"))
        emit(f"  templates built in {time.perf_counter() - started:.0f} s")
        small_url = stack.enter_context(scratch("small"))
        large_url = stack.enter_context(scratch("large"))
        small_events = build_study(templates, small_url, baseline, emit)
        large_events = build_study(templates, large_url, subjects, emit)
        small_base = stack.enter_context(serving(small_url, workdir / f"{label}-small.log", {KEY_ENV: templates.key}))
        large_base = stack.enter_context(serving(large_url, workdir / f"{label}-large.log", {KEY_ENV: templates.key}))
        small = Served("small", baseline, small_events, small_base)
        large = Served("large", subjects, large_events, large_base)
        try:
            emit(
                f"{label} pages over HTTP ({samples} requests each, alternating between the servers;"
                f" {large_events:,} vs {small_events:,} events):"
            )
            on_target = measure(small, large, templates, samples, warmup=5, emit=emit)
            emit(
                f"{label}: every page "
                + ("on target" if on_target else "NOT on target")
                + f" (p99 ≤ {TARGET_RATIO}× the {baseline}-subject figure and ≤ {TARGET_P99_MS:.0f} ms)"
            )
        finally:
            for served in (small, large):
                for client in served.clients.values():
                    client.close()


@contextmanager
def _sqlite_scratch(directory: Path, name: str) -> Iterator[str]:
    path = directory / f"pages-{name}-{uuid.uuid4().hex[:8]}.db"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm", ".vault-key"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def _postgres_scratch(server_url: str, name: str) -> Iterator[str]:
    admin = server_url.replace("postgresql+psycopg://", "postgresql://")
    database = f"trialstack_pages_{name}_{uuid.uuid4().hex[:8]}"
    url = f"{admin.rsplit('/', 1)[0]}/{database}"
    if name == "templates":
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def run(
    subjects: int = 2_000,
    events: int = 5_000_000,
    baseline: int = 100,
    templates: int = 12,
    seed: int = 7,
    samples: int = 200,
    postgres_server: str | None = None,
    emit: Emit = print,
) -> None:
    if not 0 < templates <= baseline <= subjects:
        raise TrialStackError("need 0 < --templates <= --baseline <= --subjects")
    with tempfile.TemporaryDirectory(prefix="trialstack-pages-") as directory:
        workdir = Path(directory)
        bench_backend(
            "sqlite", lambda name: _sqlite_scratch(workdir, name), subjects, events, baseline, templates, seed,
            samples, emit, workdir,
        )  # fmt: skip
        if postgres_server:
            bench_backend(
                "postgresql", lambda name: _postgres_scratch(postgres_server, name), subjects, events, baseline,
                templates, seed, samples, emit, workdir,
            )  # fmt: skip
