"""The demo's people: one user per role (identity's demo users), plus site staff at every other site.

Passwords are drawn afresh on every run and printed once; they exist only in demo databases.
"""

from __future__ import annotations

import secrets

from trialstack.identity import commands as identity_commands
from trialstack.identity import handlers as identity
from trialstack.identity.model import password_problems
from trialstack.identity.policy import Role
from trialstack.ledger.envelope import Actor
from trialstack.ledger.uow import UnitOfWork
from trialstack.simulation.simulator import Staff

DemoUser = tuple[str, str, str, tuple[str, ...]]
EXTRA_SITE_ROLES = (Role.STUDY_COORDINATOR, Role.INVESTIGATOR)


def _password(username: str) -> str:
    while True:
        candidate = secrets.token_urlsafe(12)
        if not password_problems(username, candidate):
            return candidate


def create_demo_staff(uow: UnitOfWork, study_id: str, sites: list[str]) -> tuple[list[DemoUser], Staff]:
    """Create the demo users and say which of them the simulation acts as."""
    users = identity.create_demo_users(uow, study_id, sites)
    coordinators = {sites[0]: Actor("user:demo-study-coordinator", Role.STUDY_COORDINATOR.value)}
    for site in sites[1:]:
        for role in EXTRA_SITE_ROLES:
            username = f"demo-{role.value.replace('_', '-')}-{site}"
            password = _password(username)
            display = f"Demo {role.value.replace('_', ' ').title()} {site}"
            identity.register_user(uow, identity_commands.RegisterUser(username, display, password))
            identity.grant_role(uow, identity_commands.GrantRole(username, study_id, role, frozenset({site})))
            users.append((username, password, role.value, (site,)))
            if role is Role.STUDY_COORDINATOR:
                coordinators[site] = Actor(f"user:{username}", role.value)
    supply_manager = "demo-supply-manager"
    password = _password(supply_manager)
    identity.register_user(uow, identity_commands.RegisterUser(supply_manager, "Demo Supply Manager", password))
    every_site = frozenset(sites)
    identity.grant_role(
        uow, identity_commands.GrantRole(supply_manager, study_id, Role.UNBLINDED_PHARMACIST, every_site)
    )
    users.append((supply_manager, password, Role.UNBLINDED_PHARMACIST.value, tuple(sites)))
    staff = Staff(
        coordinators,
        monitor=Actor("user:demo-monitor", Role.MONITOR.value),
        data_manager=Actor("user:demo-data-manager", Role.DATA_MANAGER.value),
        study_builder=Actor("user:demo-study-builder", Role.STUDY_BUILDER.value),
    )
    return users, staff
