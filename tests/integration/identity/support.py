"""Helpers for identity tests: a fast Argon2 profile, users with roles, bearer tokens, an API client."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from argon2 import PasswordHasher
from starlette.exceptions import StarletteDeprecationWarning

from tests.conftest import REPO_ROOT
from trialstack.bootstrap import Platform
from trialstack.identity import commands as cmd
from trialstack.identity import handlers
from trialstack.identity.crypto import Passwords, use_passwords
from trialstack.identity.policy import Role
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

if TYPE_CHECKING:
    from starlette.testclient import TestClient

STUDY = "HTN-201"
SITE_A = "0101"
SITE_B = "0102"
PASSWORD = "Sphygmo-manometer-7"
ADMIN = Actor("os:tester", "admin")


@pytest.fixture(autouse=True)
def fast_passwords() -> Iterator[Passwords]:
    """Argon2id with 1 pass over 8 KiB: the same code path, a thousand times cheaper than production settings."""
    fast = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    previous = use_passwords(fast)
    try:
        yield fast
    finally:
        use_passwords(previous)


def add_user(
    platform: Platform,
    username: str,
    role: Role | None = None,
    sites: frozenset[str] = frozenset(),
    study: str = STUDY,
    password: str = PASSWORD,
) -> None:
    with platform.unit_of_work(ADMIN) as uow:
        handlers.register_user(uow, cmd.RegisterUser(username, username.title(), password))
        if role is not None:
            handlers.grant_role(uow, cmd.GrantRole(username, study, role, sites))
        uow.commit()


def token_for(platform: Platform, username: str, study: str | None = None) -> str:
    with platform.unit_of_work(ADMIN) as uow:
        token = handlers.issue_api_token(uow, username, study_id=study)
        uow.commit()
    return token.secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def loaded(platform: Platform) -> Platform:
    """The platform with the demo study HTN-201 (sites 0101 and 0102) published."""
    version = study_version(load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml"))
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(version, "yaml", "study.yaml"))
        uow.commit()
    return platform


def client_class() -> type[TestClient]:
    """Starlette's TestClient; it warns that it prefers `httpx2` (not a dependency yet), which is not our concern."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`", StarletteDeprecationWarning)
        from starlette import testclient

    return testclient.TestClient
