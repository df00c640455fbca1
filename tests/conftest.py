"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL, each in its own fresh database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from trialstack.bootstrap import Platform, bootstrap
from trialstack.clock import FixedClock
from trialstack.settings import Settings

TEST_VAULT_KEY = "dGVzdC1vbmx5LXZhdWx0LW1hc3Rlci1rZXktMzItYnk"
"""The suite's personal-data vault master key (PostgreSQL has no default key); tests of key handling unset it."""
os.environ.setdefault("TRIALSTACK_VAULT_KEY", TEST_VAULT_KEY)

POSTGRES_SERVER = os.environ.get("TRIALSTACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path in ../shared/data; skips the test with a reason when the data is absent (never in CI)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing in CI: the shared standards data must sit beside the repository")
        pytest.skip(f"{path} is absent: the shared standards data is not beside this checkout")
    return path


def _postgres_admin_url() -> str:
    return POSTGRES_SERVER.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    try:
        with psycopg.connect(_postgres_admin_url(), connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def create_postgres_database() -> str:
    name = f"trialstack_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_postgres_admin_url(), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_postgres_database(name: str) -> None:
    with psycopg.connect(_postgres_admin_url(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_url_for(name: str) -> str:
    base = _postgres_admin_url().rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_available: bool) -> Iterator[str]:
    """A fresh, empty database URL on each backend; PostgreSQL databases are created and dropped per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    if not postgres_available:
        pytest.fail(f"PostgreSQL does not answer at {POSTGRES_SERVER}: .ci/run must start it")
    name = create_postgres_database()
    try:
        yield postgres_url_for(name)
    finally:
        drop_postgres_database(name)


@pytest.fixture
def second_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """Another fresh, empty database on the same backend as `database_url`."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'second.db'}"
        return
    name = create_postgres_database()
    try:
        yield postgres_url_for(name)
    finally:
        drop_postgres_database(name)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))


@pytest.fixture
def platform(database_url: str, clock: FixedClock) -> Iterator[Platform]:
    """A migrated platform on each backend with a fixed clock."""
    instance = bootstrap(Settings(database_url=database_url), clock=clock, migrate=True)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def engine(platform: Platform) -> Engine:
    return platform.engine
