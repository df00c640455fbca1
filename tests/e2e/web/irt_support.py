"""The IRT browser tests' world: the demo study on a fixed clock (20 January 2026), its kit list registered at the
depot, site 0101 stocked by a first shipment, a second shipment on its way; an enrolled subject waiting for
randomization (Day 1 seated SBP 165 mmHg) and one already randomized with a kit; one user per role.

`python -m tests.e2e.web.irt_support serve --db URL --port N` serves it on the same fixed clock.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from argon2 import PasswordHasher

from tests.e2e.web.support import PASSWORD, REPO_ROOT, STUDY
from trialstack.bootstrap import Platform, bootstrap
from trialstack.capture import commands as capture_cmd
from trialstack.capture import handlers as capture
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.clock import FixedClock
from trialstack.consent import commands as consent_cmd
from trialstack.consent import handlers as consent
from trialstack.identity import commands as identity_cmd
from trialstack.identity import handlers as identity
from trialstack.identity.crypto import Passwords, use_passwords
from trialstack.identity.model import SITE_ROLES
from trialstack.identity.policy import Role
from trialstack.irt import commands as irt_cmd
from trialstack.irt import handlers as irt
from trialstack.irt.readmodel import kits
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

NOW = datetime(2026, 1, 20, 15, 0, tzinfo=UTC)  # 09:00 in Chicago (site 0101)
SCREENED_ON = "2026-01-05"
DAY1 = "2026-01-20"
SITE = "0101"
OTHER_SITE = "0102"
DEPOT = "DEPOT_US"
ARMS = {"ZEL": "Zelvoprin 20 mg once daily", "PBO": "Matching placebo once daily"}
ADMIN = Actor("os:web-e2e", "admin")
COORDINATOR = Actor("user:coord.a", "study_coordinator")
PHARMACIST = Actor("user:pharmacist", "unblinded_pharmacist")
USERS: dict[str, tuple[Role, frozenset[str]]] = {
    "coord.a": (Role.STUDY_COORDINATOR, frozenset({SITE})),
    "inv.a": (Role.INVESTIGATOR, frozenset({SITE})),
    "pharmacist": (Role.UNBLINDED_PHARMACIST, frozenset({SITE, OTHER_SITE})),
    "coord.b": (Role.STUDY_COORDINATOR, frozenset({OTHER_SITE})),
}
"""The people of the browser tests; `role-<role>` users (one per role, at 0101) serve the route × role matrix."""


def matrix_user(role: Role) -> str:
    return f"role-{role.value.replace('_', '-')}"


@dataclass(frozen=True)
class World:
    waiting: str
    """Enrolled, Day 1 vital signs recorded, not randomized."""
    randomized: str
    """Randomized and dispensed at Day 1 (for the blinding checks)."""
    shipment: str
    """Dispatched to 0101, not received yet."""


def _entropy(rng: random.Random) -> Callable[[], bytes]:
    return lambda: rng.randbytes(32)


def _do(platform: Platform, actor: Actor, handler: Callable[..., Any], *args: Any) -> Any:
    with platform.unit_of_work(actor) as uow:
        result = handler(uow, STUDY, *args)
        uow.commit()
    return result


def _save(platform: Platform, subject: str, visit: str, form: str, values: dict[str, str]) -> None:
    inputs = {item: capture_cmd.ItemInput(value) for item, value in values.items()}
    _do(platform, COORDINATOR, capture.save_form, capture_cmd.SaveForm(subject, FormKey(form, VisitKey(visit)), inputs))


def enrolled_subject(platform: Platform, sbp: str) -> str:
    """Screened on 5 January, consented on paper, eligible, Day 1 today with seated SBP `sbp`, enrolled today."""
    subject = str(
        _do(platform, COORDINATOR, capture.screen_subject, capture_cmd.ScreenSubject(SITE, SCREENED_ON)).subject_id
    )
    paper = consent_cmd.RecordPaperConsent(subject, "ICF", "1.0", SCREENED_ON, "en", {"BIOBANK": False})
    _do(
        platform,
        COORDINATOR,
        lambda uow, study: consent.record_paper_consent(uow, study, SITE, ("coord.a", "Coord A"), paper),
    )
    for visit, day in (("SCREENING", SCREENED_ON), ("DAY1", DAY1)):
        _do(
            platform, COORDINATOR, capture.record_visit_date, capture_cmd.RecordVisitDate(subject, VisitKey(visit), day)
        )
    _save(platform, subject, "SCREENING", "IC", {"ICDAT": SCREENED_ON, "ICVERS": "1.0"})
    _save(platform, subject, "SCREENING", "DM",
          {"BRTHDAT": "1970-03-01", "SEX": "M", "RACE": "WHITE", "ETHNIC": "NOT HISPANIC OR LATINO"})  # fmt: skip
    vitals = {"VSDAT": SCREENED_ON, "SYSBP": "168", "DIABP": "95", "PULSE": "72", "WEIGHT": "80.5", "HEIGHT": "175"}
    _save(platform, subject, "SCREENING", "VS", vitals)
    labs = {"LBPERF": "Y", "LBDAT": SCREENED_ON, "K": "4.4", "SODIUM": "140", "CREAT": "0.9", "ALT": "25", "GLUC": "95"}
    _save(platform, subject, "SCREENING", "LB", labs)
    _save(
        platform, subject, "DAY1", "VS", {"VSDAT": DAY1, "SYSBP": sbp, "DIABP": "94", "PULSE": "70", "WEIGHT": "80.1"}
    )
    _save(platform, subject, "DAY1", "IE", {"IEINC03": "Y", "IEEXC02": "N", "IEEXC04": "N", "IEYN": "Y"})
    _do(platform, COORDINATOR, capture.enrol_subject, capture_cmd.EnrolSubject(subject, DAY1))
    return subject


def seed(database_url: str) -> World:
    previous = use_passwords(Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)))
    platform = bootstrap(database_url=database_url, migrate=True, clock=FixedClock(NOW))
    rng = random.Random(20260120)
    try:
        definition = load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")
        with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
            publish_study_version(uow, PublishStudyVersion(study_version(definition), "yaml", "study.yaml"))
            uow.commit()
        people = dict(USERS)
        for role in Role:
            if role is not Role.PARTICIPANT:
                people[matrix_user(role)] = (role, frozenset({SITE}) if role in SITE_ROLES else frozenset())
        with platform.unit_of_work(ADMIN) as uow:
            for username, (role, sites) in people.items():
                identity.register_user(
                    uow, identity_cmd.RegisterUser(username, f"{username.title()} Example", PASSWORD)
                )
                identity.grant_role(uow, identity_cmd.GrantRole(username, STUDY, role, sites))
            uow.commit()

        expiry = date(2027, 6, 30)
        _do(platform, PHARMACIST, irt.generate_kit_list, DEPOT, dict.fromkeys(ARMS, 12), "LOT-A01", expiry, 2001,
            _entropy(rng))  # fmt: skip
        [first] = [e.payload["shipment_id"] for e in _do(platform, irt.SYSTEM_IRT, irt.resupply_site, SITE)
                   if e.event_type == "ShipmentRequested"]  # fmt: skip
        _do(platform, PHARMACIST, irt.dispatch_shipment, irt_cmd.DispatchShipment(first, "1Z000000001"))
        with platform.engine.connect() as connection:
            boxed = tuple(k["kit"] for k in kits(connection, STUDY, unblinded=False) if k["shipment_id"] == first)
        _do(platform, COORDINATOR, irt.receive_shipment, irt_cmd.ReceiveShipment(first, boxed, False))

        randomized = enrolled_subject(platform, "150")
        _do(platform, COORDINATOR, irt.randomize, irt_cmd.RandomizeSubject(randomized), _entropy(rng))
        _do(platform, COORDINATOR, irt.dispense, irt_cmd.DispenseKits(randomized, "DAY1"))
        waiting = enrolled_subject(platform, "165")

        [second] = _do(platform, PHARMACIST, irt.request_shipment, irt_cmd.RequestShipment(SITE, {"ZEL": 1, "PBO": 1}))
        shipment = str(second.payload["shipment_id"])
        _do(platform, PHARMACIST, irt.dispatch_shipment, irt_cmd.DispatchShipment(shipment, "1Z000000002"))
        with platform.unit_of_work(ADMIN) as uow:
            identity.open_participant_account(
                uow,
                identity_cmd.OpenParticipantAccount(matrix_user(Role.PARTICIPANT), PASSWORD, STUDY, SITE, randomized),
            )
            uow.commit()
        return World(waiting, randomized, shipment)
    finally:
        platform.close()
        use_passwords(previous)


def serve(database_url: str, port: int) -> None:
    import uvicorn

    from trialstack.api.app import create_app

    platform = bootstrap(database_url=database_url, migrate=True, clock=FixedClock(NOW))
    uvicorn.run(create_app(platform), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args()
    serve(arguments.db, arguments.port)
