"""Whole-database backup and restore: SQLite by its online backup API, PostgreSQL by pg_dump / pg_restore.

A backup file is one file that says what it holds:

    TRIALSTACK-BACKUP 1\\n
    {"backend": "sqlite", "payload_sha256": "...", "studies": [...], ...}\\n      (the manifest, one JSON line)
    <payload>                                                                  (a SQLite database file, or a
                                                                                pg_dump custom-format archive)

The manifest names the backend the payload came from (a SQLite backup cannot be restored into PostgreSQL or the
other way round), the payload's size and SHA-256 (a truncated or altered file is refused before anything is
written), and every study's head `(study_id, last_seq, last_hash)` as of the backup's snapshot, which a restore
checks against what it restored. The whole database is copied, not only the ledger: read models, credentials and
the personal-data vault's tables come along; the vault's master key never does (it lives outside the database).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.engine import URL

import trialstack
from trialstack.ledger.database import make_engine, normalize_url
from trialstack.ledger.errors import LedgerError

MAGIC = b"TRIALSTACK-BACKUP 1\n"
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
COPY_BYTES = 1024 * 1024
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
"""Where Debian and Ubuntu install the PostgreSQL client programs when they are not on PATH."""
BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
SCHEMES = {"sqlite": "sqlite:///", "postgresql": "postgresql://"}


class BackupError(LedgerError):
    """A backup or restore that cannot be done as asked; nothing was written."""

    code = "backup-error"


@dataclass(frozen=True)
class StudyHead:
    study_id: str
    last_seq: int
    last_hash: str


@dataclass(frozen=True)
class Manifest:
    """What a backup file says about itself (the JSON line after the magic line)."""

    backend: str
    created_at: str
    trialstack_version: str
    source: str
    schema_revision: str | None
    studies: tuple[StudyHead, ...]
    tables: tuple[str, ...]
    payload_bytes: int
    payload_sha256: str
    tool: str | None = None

    @property
    def events(self) -> int:
        return sum(head.last_seq for head in self.studies)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "format": "trialstack-backup",
                "format_version": FORMAT_VERSION,
                "backend": self.backend,
                "created_at": self.created_at,
                "trialstack_version": self.trialstack_version,
                "source": self.source,
                "schema_revision": self.schema_revision,
                "studies": [[h.study_id, h.last_seq, h.last_hash] for h in self.studies],
                "tables": list(self.tables),
                "payload_bytes": self.payload_bytes,
                "payload_sha256": self.payload_sha256,
                "tool": self.tool,
            }
        )

    @classmethod
    def from_json(cls, text: bytes, where: Path) -> Manifest:
        try:
            data = orjson.loads(text)
            if data.get("format") != "trialstack-backup" or data.get("format_version") != FORMAT_VERSION:
                raise BackupError(f"{where}: backup format version {data.get('format_version')!r} is not supported")
            return cls(
                backend=str(data["backend"]),
                created_at=str(data["created_at"]),
                trialstack_version=str(data["trialstack_version"]),
                source=str(data["source"]),
                schema_revision=data["schema_revision"],
                studies=tuple(StudyHead(str(s), int(n), str(h)) for s, n, h in data["studies"]),
                tables=tuple(str(t) for t in data["tables"]),
                payload_bytes=int(data["payload_bytes"]),
                payload_sha256=str(data["payload_sha256"]),
                tool=data.get("tool"),
            )
        except BackupError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BackupError(f"{where}: the backup's manifest is damaged ({exc})") from None


@dataclass(frozen=True)
class RestoreResult:
    manifest: Manifest
    left_in_place: tuple[str, ...] = field(default_factory=tuple)
    """PostgreSQL only: tables of the target that the backup does not hold (pg_restore --clean leaves them)."""


# --- backup -------------------------------------------------------------------------------------------------------


def backup(database_url: str, out: Path, *, force: bool = False) -> Manifest:
    """Write a backup of the whole database named by `database_url` to `out` (atomically: all or nothing)."""
    url = normalize_url(database_url)
    backend = url.get_backend_name()
    out = Path(out)
    if not out.parent.is_dir():
        raise BackupError(f"cannot write {out}: directory {out.parent} does not exist")
    if out.is_dir():
        raise BackupError(f"cannot write {out}: it is a directory")
    if out.exists() and not force:
        raise BackupError(f"{out} already exists: choose another file, or pass --force to replace it")
    if backend == "sqlite":
        database = _sqlite_file(url, must_exist=True)
        if out.resolve() in {Path(f"{database}{suffix}").resolve() for suffix in ("", "-wal", "-shm", "-journal")}:
            raise BackupError(f"{out} is the database itself: write the backup to another file")
    with _temporary(out.parent, out.name, "payload") as payload:
        if backend == "sqlite":
            manifest = _backup_sqlite(_sqlite_file(url, must_exist=True), url, payload)
        else:
            manifest = _backup_postgres(url, payload)
        with _temporary(out.parent, out.name, "partial") as partial:
            with partial.open("wb") as target:
                target.write(MAGIC)
                target.write(manifest.to_json() + b"\n")
                with payload.open("rb") as source:
                    shutil.copyfileobj(source, target, COPY_BYTES)
                target.flush()
                os.fsync(target.fileno())
            os.replace(partial, out)
    _fsync_directory(out.parent)
    return manifest


def _backup_sqlite(database: Path, url: URL, payload: Path) -> Manifest:
    """The online backup API: a consistent copy of the whole file (WAL included), while writers carry on."""
    source = sqlite3.connect(database)
    try:
        source.execute("PRAGMA busy_timeout = 30000")
        copy = sqlite3.connect(payload)
        try:
            source.backup(copy)
        finally:
            copy.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {database}: {exc}") from None
    finally:
        source.close()
    with _sqlite_readonly(payload) as copy:
        tables = _sqlite_tables(copy)
        _require_ledger(tables, url)
        heads = _heads(copy.execute("SELECT study_id, last_seq, last_hash FROM study_head ORDER BY study_id"))
        revision = _revision(copy.execute, tables)
    size, digest = _digest(payload)
    return Manifest(
        backend="sqlite",
        created_at=_now(),
        trialstack_version=trialstack.__version__,
        source=str(database),
        schema_revision=revision,
        studies=heads,
        tables=tables,
        payload_bytes=size,
        payload_sha256=digest,
        tool=f"sqlite {sqlite3.sqlite_version} backup API",
    )


def _backup_postgres(url: URL, payload: Path) -> Manifest:
    """pg_dump (custom format) of the snapshot in which the study heads are read, so both describe one moment."""
    pg_dump = find_pg_tool("pg_dump")
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
            snapshot = str(connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
            tables = _postgres_tables(connection)
            _require_ledger(tables, url)
            heads = _heads(connection.exec_driver_sql("SELECT study_id, last_seq, last_hash FROM study_head"))
            revision = _revision(connection.exec_driver_sql, tables)
            _run_pg_tool(
                [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={payload}", "--no-password"], url
            )
            connection.rollback()
    finally:
        engine.dispose()
    size, digest = _digest(payload)
    return Manifest(
        backend="postgresql",
        created_at=_now(),
        trialstack_version=trialstack.__version__,
        source=url.set(drivername="postgresql").render_as_string(hide_password=True),
        schema_revision=revision,
        studies=heads,
        tables=tables,
        payload_bytes=size,
        payload_sha256=digest,
        tool=_tool_version(pg_dump),
    )


# --- restore ------------------------------------------------------------------------------------------------------


def read_manifest(path: Path) -> Manifest:
    """The manifest of a backup file; a clear error for anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    with path.open("rb") as stream:
        first = stream.readline(len(MAGIC))
        if first != MAGIC:
            raise BackupError(f"{path} is not a TrialStack backup{_what_it_is(first)}")
        line = stream.readline(MAX_MANIFEST_BYTES + 1)
    if not line.endswith(b"\n"):
        raise BackupError(f"{path}: the backup's manifest is damaged (no end of line)")
    manifest = Manifest.from_json(line, path)
    if manifest.backend not in BACKENDS:
        raise BackupError(f"{path}: unknown backend {manifest.backend!r} in the backup's manifest")
    return manifest


def restore(path: Path, database_url: str, *, force: bool = False) -> RestoreResult:
    """Restore a backup into the database named by `database_url`.

    Refuses, writing nothing, when the file is not a backup, is damaged, comes from the other backend, or when the
    target database is not empty and `force` is not given.
    """
    path = Path(path)
    manifest = read_manifest(path)
    url = normalize_url(database_url)
    backend = url.get_backend_name()
    if backend != manifest.backend:
        raise BackupError(
            f"{path} is a {BACKENDS[manifest.backend]} backup and cannot be restored into a {BACKENDS[backend]}"
            f" database: restore it into a {SCHEMES[manifest.backend]} URL"
        )
    if backend == "sqlite":
        return _restore_sqlite(path, manifest, url, force)
    return _restore_postgres(path, manifest, url, force)


def _restore_sqlite(path: Path, manifest: Manifest, url: URL, force: bool) -> RestoreResult:
    target = _sqlite_file(url, must_exist=False)
    if not target.parent.is_dir():
        raise BackupError(f"cannot restore into {target}: directory {target.parent} does not exist")
    if target.exists():
        _refuse_unless_empty(_sqlite_contents(target), target, force)
    with _temporary(target.parent, target.name, "restore") as payload:
        _extract_payload(path, manifest, payload)
        with _sqlite_readonly(payload) as copy:
            _require_ledger(_sqlite_tables(copy), path)
        source = sqlite3.connect(payload)
        try:
            destination = sqlite3.connect(target)
            try:
                destination.execute("PRAGMA busy_timeout = 30000")
                source.backup(destination)
            finally:
                destination.close()
        except sqlite3.Error as exc:
            raise BackupError(f"cannot restore into {target}: {exc}") from None
        finally:
            source.close()
    with _sqlite_readonly(target, immutable=False) as restored:
        heads = _heads(restored.execute("SELECT study_id, last_seq, last_hash FROM study_head ORDER BY study_id"))
    _check_heads(manifest, heads, target)
    return RestoreResult(manifest)


def _restore_postgres(path: Path, manifest: Manifest, url: URL, force: bool) -> RestoreResult:
    pg_restore = find_pg_tool("pg_restore")
    shown = url.set(drivername="postgresql").render_as_string(hide_password=True)
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as connection:
            _refuse_unless_empty(_postgres_contents(connection), shown, force)
    finally:
        engine.dispose()
    with tempfile.TemporaryDirectory(prefix="trialstack-restore-") as directory:
        payload = Path(directory) / "payload.dump"
        _extract_payload(path, manifest, payload)
        command = [pg_restore, "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges"]
        if force:
            command += ["--clean", "--if-exists"]
        _run_pg_tool([*command, "--no-password", str(payload)], url)
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as connection:
            heads = _heads(connection.exec_driver_sql("SELECT study_id, last_seq, last_hash FROM study_head"))
            left = tuple(sorted(set(_postgres_tables(connection)) - set(manifest.tables)))
    finally:
        engine.dispose()
    _check_heads(manifest, heads, shown)
    return RestoreResult(manifest, left)


def _extract_payload(path: Path, manifest: Manifest, payload: Path) -> None:
    """Copy the payload out of the backup file, checking its size and SHA-256 against the manifest."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream, payload.open("wb") as target:
        stream.readline(len(MAGIC))
        stream.readline(MAX_MANIFEST_BYTES + 1)
        while block := stream.read(COPY_BYTES):
            digest.update(block)
            size += len(block)
            target.write(block)
    if (size, digest.hexdigest()) != (manifest.payload_bytes, manifest.payload_sha256):
        raise BackupError(
            f"{path} is damaged: its content ({size} bytes) does not match the size ({manifest.payload_bytes} bytes)"
            " and SHA-256 its manifest records; nothing was restored"
        )


def _refuse_unless_empty(contents: tuple[int, int | None], target: object, force: bool) -> None:
    tables, events = contents
    if tables and not force:
        held = f"{tables} tables" + (f", {events} ledger events" if events is not None else "")
        raise BackupError(
            f"the target database {target} is not empty ({held}): restore writes only into an empty database;"
            " pass --force to replace its contents"
        )


def _check_heads(manifest: Manifest, heads: tuple[StudyHead, ...], target: object) -> None:
    if sorted(heads, key=lambda h: h.study_id) != sorted(manifest.studies, key=lambda h: h.study_id):
        raise BackupError(
            f"the restored database {target} does not hold the study heads the backup records: run trialstack verify"
        )


# --- PostgreSQL client programs -----------------------------------------------------------------------------------


def find_pg_tool(name: str) -> str:
    """`pg_dump` / `pg_restore` from PATH, else the newest under /usr/lib/postgresql/*/bin; a clear error if none."""
    found = shutil.which(name)
    if found:
        return found
    candidates = [Path(d) / name for d in glob.glob(PG_BIN_GLOB)]
    installed = [c for c in candidates if c.is_file() and os.access(c, os.X_OK)]
    if not installed:
        raise BackupError(
            f"{name} was not found on PATH or in {PG_BIN_GLOB}: install the PostgreSQL client programs"
            " (Debian: apt-get install postgresql-client) or put them on PATH"
        )
    return str(max(installed, key=lambda p: _version_key(p.parent.parent.name)))


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)) or (0,)


def _tool_version(tool: str) -> str | None:
    try:
        return subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _run_pg_tool(command: list[str], url: URL) -> None:
    """Run pg_dump / pg_restore against `url`; the password travels in PGPASSWORD, never on the command line."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    dbname = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    try:
        done = subprocess.run([*command, f"--dbname={dbname}"], capture_output=True, text=True, env=env)
    except OSError as exc:
        raise BackupError(f"cannot run {command[0]}: {exc}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()] or lines or [f"exit code {done.returncode}"]
        raise BackupError(f"{Path(command[0]).name} failed: {errors[0]}")


# --- helpers ------------------------------------------------------------------------------------------------------


def _sqlite_file(url: URL, *, must_exist: bool) -> Path:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"{url.render_as_string()} is not a database file: back up and restore need a file path")
    path = Path(database)
    if must_exist and not path.is_file():
        raise BackupError(f"no database at {path}")
    return path


@contextlib.contextmanager
def _sqlite_readonly(path: Path, immutable: bool = True) -> Iterator[sqlite3.Connection]:
    """Open a SQLite file read-only; `immutable` for a file nobody else has open (no lock, no side files)."""
    option = "immutable=1" if immutable else "mode=ro"
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?{option}", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {path}: {exc}") from None
    try:
        yield connection
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from None
    finally:
        connection.close()


def _sqlite_tables(connection: sqlite3.Connection) -> tuple[str, ...]:
    rows = connection.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    return tuple(str(row[0]) for row in rows)


def _sqlite_contents(path: Path) -> tuple[int, int | None]:
    """(tables, ledger events or None) of an existing SQLite file, read without changing it."""
    if path.stat().st_size == 0:
        return 0, None
    with _sqlite_readonly(path, immutable=False) as connection:
        tables = _sqlite_tables(connection)
        events = None
        if "ledger_event" in tables:
            events = int(connection.execute("SELECT count(*) FROM ledger_event").fetchone()[0])
    return len(tables), events


def _postgres_tables(connection: Connection) -> tuple[str, ...]:
    rows = connection.exec_driver_sql(
        "SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END"
        " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname !~ '^pg_(toast|temp)' ORDER BY 1"
    )
    return tuple(str(row[0]) for row in rows)


def _postgres_contents(connection: Connection) -> tuple[int, int | None]:
    tables = _postgres_tables(connection)
    events = None
    if "ledger_event" in tables:
        events = int(connection.exec_driver_sql("SELECT count(*) FROM ledger_event").scalar_one())
    return len(tables), events


def _require_ledger(tables: tuple[str, ...], where: object) -> None:
    missing = {"ledger_event", "study_head"} - set(tables)
    if missing:
        raise BackupError(f"{where} holds no TrialStack ledger (no {', '.join(sorted(missing))} table)")


def _heads(rows: Any) -> tuple[StudyHead, ...]:
    return tuple(sorted((StudyHead(str(r[0]), int(r[1]), str(r[2])) for r in rows), key=lambda h: h.study_id))


def _revision(execute: Any, tables: tuple[str, ...]) -> str | None:
    if "alembic_version" not in tables:
        return None
    row = execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def _digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while block := stream.read(COPY_BYTES):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _what_it_is(start: bytes) -> str:
    if start.startswith(b"SQLite format 3"):
        return " (it is a bare SQLite database: make backups with trialstack backup)"
    if start.startswith(b"PGDMP"):
        return " (it is a bare pg_dump archive: restore it with pg_restore, or make backups with trialstack backup)"
    return ""


@contextlib.contextmanager
def _temporary(directory: Path, name: str, purpose: str) -> Iterator[Path]:
    """A hidden scratch file beside `name`, removed whatever happens (with any SQLite side files)."""
    path = directory / f".{name}.{purpose}-{uuid.uuid4().hex[:12]}"
    try:
        yield path
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
