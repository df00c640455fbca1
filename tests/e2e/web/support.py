"""The browser tests' world: a demo study database with one user per role and known passwords, a blinded
allocation event in one casebook, and the server process that serves it (`python -m tests.e2e.web.support`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from argon2 import PasswordHasher
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from trialstack.bootstrap import bootstrap
from trialstack.capture.refs import subject_stream_id
from trialstack.cli.main import app as cli
from trialstack.identity import commands as cmd
from trialstack.identity import handlers
from trialstack.identity.crypto import Passwords, use_passwords
from trialstack.identity.policy import Role
from trialstack.ledger.envelope import Actor
from trialstack.ledger.registry import encode, event_type, info

REPO_ROOT = Path(__file__).resolve().parents[3]
STUDY = "HTN-201"
SITE_A = "0101"
SITE_B = "0102"
PASSWORD = "Sphygmo-manometer-7"
ADMIN = Actor("os:web-e2e", "admin")
IRT = Actor("system:irt", "system")
ALLOCATED_SUBJECT = "0101-001"
ARM_TEXT = "Zelvoprin 20 mg (kit K-4711)"

USERS: dict[str, tuple[Role, frozenset[str]]] = {
    "coord.a": (Role.STUDY_COORDINATOR, frozenset({SITE_A})),
    "coord.b": (Role.STUDY_COORDINATOR, frozenset({SITE_B})),
    "inv.a": (Role.INVESTIGATOR, frozenset({SITE_A})),
    "monitor": (Role.MONITOR, frozenset()),
    "datamanager": (Role.DATA_MANAGER, frozenset()),
    "pharmacist.a": (Role.UNBLINDED_PHARMACIST, frozenset({SITE_A})),
    "builder": (Role.STUDY_BUILDER, frozenset()),
}


def _allocation_event() -> type[BaseModel]:
    """A blinded allocation event type, until the IRT context registers its own (unknown types count as blinded,
    but the casebook fold must be able to decode every event of the subject stream)."""
    try:
        return info("WebTestSubjectAllocated").model
    except Exception:

        @event_type("irt", blinded=True)
        class WebTestSubjectAllocated(BaseModel):
            model_config = ConfigDict(frozen=True, extra="forbid")

            subject_id: str
            arm: str

        return WebTestSubjectAllocated


Allocation = _allocation_event()


def seed(database_url: str) -> None:
    """The demo study (6 subjects, seed 3), the users above, and an allocation in ALLOCATED_SUBJECT's stream."""
    result = CliRunner().invoke(cli, ["demo", "--subjects", "6", "--seed", "3", "--db", database_url])
    if result.exit_code != 0:
        raise RuntimeError(f"trialstack demo failed: {result.output}")
    previous = use_passwords(Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)))
    platform = bootstrap(database_url=database_url, migrate=True)
    try:
        with platform.unit_of_work(ADMIN) as uow:
            for username, (role, sites) in USERS.items():
                handlers.register_user(uow, cmd.RegisterUser(username, f"{username.title()} Example", PASSWORD))
                handlers.grant_role(uow, cmd.GrantRole(username, STUDY, role, sites))
            uow.commit()
        stream = subject_stream_id(STUDY, ALLOCATED_SUBJECT)
        with platform.unit_of_work(IRT) as uow:
            version = uow.stream_version("subject", stream)
            payload = Allocation(subject_id=ALLOCATED_SUBJECT, arm=ARM_TEXT)
            uow.append(STUDY, "subject", stream, [encode(payload)], expected_version=version)
            uow.commit()
    finally:
        platform.close()
        use_passwords(previous)


def serve(database_url: str, port: int) -> None:
    """Serve the app the way `trialstack serve` does, with the allocation event type known to this process."""
    import uvicorn

    from trialstack.api.app import create_app

    platform = bootstrap(database_url=database_url, migrate=True)
    uvicorn.run(create_app(platform), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["seed", "serve"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, default=8765)
    arguments = parser.parse_args()
    if arguments.command == "seed":
        seed(arguments.db)
    else:
        serve(arguments.db, arguments.port)
