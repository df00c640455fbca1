"""Identity through the unit of work on SQLite and PostgreSQL: what reaches the ledger, the read model, the
credential store, and what a rebuild gives back."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlalchemy import select

from tests.integration.identity.support import ADMIN, PASSWORD, SITE_A, STUDY, add_user
from trialstack.bootstrap import Platform
from trialstack.clock import FixedClock
from trialstack.errors import InvalidInput
from trialstack.identity import commands as cmd
from trialstack.identity import handlers
from trialstack.identity.authentication import login, principal_for_token, reauthenticate_for_signature
from trialstack.identity.credentials import credential, password_hash
from trialstack.identity.model import LOCKOUT_PERIOD, NotAuthenticated, SignatureRejected
from trialstack.identity.policy import Grant, Role
from trialstack.identity.readmodel import find_user, grants_of, list_users
from trialstack.ledger import store
from trialstack.ledger.envelope import Actor
from trialstack.ledger.projections import projections_checksum, rebuild
from trialstack.ledger.verify import verify


def events_of(platform: Platform, study_id: str) -> list[tuple[str, dict[str, object]]]:
    with platform.engine.connect() as connection:
        return [(e.event_type, e.payload) for e in store.iter_study(connection, study_id)]


def try_login(platform: Platform, username: str, password: str) -> None:
    with platform.unit_of_work(ADMIN) as uow:
        login(uow, username, password)
        uow.commit()


def test_accounts_live_in_the_platform_chain_and_grants_in_the_study_chain(platform: Platform) -> None:
    add_user(platform, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    assert [kind for kind, _ in events_of(platform, "_platform")] == ["UserRegistered"]
    assert events_of(platform, STUDY) == [
        (
            "RoleGranted",
            {
                "display_name": "Cora",
                "role": "study_coordinator",
                "sites": [SITE_A],
                "study_id": STUDY,
                "username": "cora",
            },
        )
    ]
    with platform.engine.connect() as connection:
        assert grants_of(connection, "cora") == (Grant(STUDY, Role.STUDY_COORDINATOR, frozenset({SITE_A})),)
        stored = password_hash(connection, "cora")
        assert verify(connection).ok
        ledger_text = b"".join(
            orjson.dumps(p) for _, p in events_of(platform, "_platform") + events_of(platform, STUDY)
        )
    assert stored is not None and stored.startswith("$argon2id$")
    assert PASSWORD.encode() not in ledger_text and stored.encode() not in ledger_text


def test_a_role_at_an_unknown_site_of_a_loaded_study_is_refused(loaded: Platform) -> None:
    with pytest.raises(InvalidInput, match="site 0199 is not a site of study HTN-201"):
        add_user(loaded, "ivan", Role.INVESTIGATOR, frozenset({"0199"}))
    add_user(loaded, "ivan", Role.INVESTIGATOR, frozenset({SITE_A}))


def test_wrong_passwords_are_recorded_and_the_fifth_locks_the_account(platform: Platform) -> None:
    add_user(platform, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    for _ in range(5):
        with pytest.raises(NotAuthenticated):
            try_login(platform, "cora", "Wrong-password-12")
    kinds = [kind for kind, _ in events_of(platform, "_platform")]
    assert kinds == ["UserRegistered", *["LoginFailed"] * 5, "UserLockedOut"]
    with pytest.raises(NotAuthenticated):
        try_login(platform, "cora", PASSWORD)
    assert len(events_of(platform, "_platform")) == 7, "attempts on a locked account are not written"
    assert isinstance(platform.clock, FixedClock)
    platform.clock.advance(LOCKOUT_PERIOD)
    try_login(platform, "cora", PASSWORD)
    assert events_of(platform, "_platform")[-1][0] == "UserLoggedIn"


def test_unknown_users_leave_no_trace_in_the_ledger(platform: Platform) -> None:
    with pytest.raises(NotAuthenticated):
        try_login(platform, "mallory", PASSWORD)
    assert events_of(platform, "_platform") == []


def test_signature_reauthentication_failure_is_committed_as_signature_failed(platform: Platform) -> None:
    add_user(platform, "ines", Role.INVESTIGATOR, frozenset({SITE_A}))
    signer = Actor("user:ines", "investigator")
    with pytest.raises(SignatureRejected), platform.unit_of_work(signer) as uow:
        reauthenticate_for_signature(uow, "ines", "Not-my-password-1")
    failed = events_of(platform, "_platform")[-1]
    assert failed == ("SignatureFailed", {"consecutive_failures": 1, "reason": "password", "username": "ines"})
    with platform.unit_of_work(signer) as uow:
        principal = reauthenticate_for_signature(uow, "ines", PASSWORD)
        uow.commit()
    assert principal.display_name == "Ines" and events_of(platform, "_platform")[-1][0] == "SignatureAuthenticated"
    with pytest.raises(Exception, match="cannot sign as ines"), platform.unit_of_work(Actor("user:cora", "x")) as uow:
        reauthenticate_for_signature(uow, "ines", PASSWORD)


def test_signature_failures_lock_the_account_too(platform: Platform) -> None:
    add_user(platform, "ines", Role.INVESTIGATOR, frozenset({SITE_A}))
    for _ in range(5):
        with pytest.raises(SignatureRejected), platform.unit_of_work(Actor("user:ines", "investigator")) as uow:
            reauthenticate_for_signature(uow, "ines", "Not-my-password-1")
    assert events_of(platform, "_platform")[-1][0] == "UserLockedOut"
    with pytest.raises(SignatureRejected), platform.unit_of_work(Actor("user:ines", "investigator")) as uow:
        reauthenticate_for_signature(uow, "ines", PASSWORD)


def test_tokens_expire_are_revoked_and_die_with_a_disabled_account(platform: Platform) -> None:
    add_user(platform, "lab", Role.DATA_MANAGER)
    with platform.unit_of_work(ADMIN) as uow:
        lasting = handlers.issue_api_token(uow, "lab", label="central lab feed")
        brief = handlers.issue_api_token(uow, "lab", expires_at=platform.clock.now() + timedelta(days=1))
        uow.commit()
    now = platform.clock.now()
    with platform.engine.connect() as connection:
        principal, token_id = principal_for_token(connection, lasting.secret, now)
        assert principal.username == "lab" and token_id == lasting.token_id
        principal_for_token(connection, brief.secret, now)
        with pytest.raises(NotAuthenticated, match="expired"):
            principal_for_token(connection, brief.secret, now + timedelta(days=1))
        with pytest.raises(NotAuthenticated, match="unknown API token"):
            principal_for_token(connection, lasting.secret[:-2] + ("zz" if lasting.secret[-2:] != "zz" else "yy"), now)
    with platform.unit_of_work(ADMIN) as uow:
        handlers.revoke_api_token(uow, brief.token_id, reason="rotated")
        handlers.disable_user(uow, cmd.DisableUser("lab", reason="left the sponsor"))
        uow.commit()
    with platform.engine.connect() as connection:
        with pytest.raises(NotAuthenticated, match="revoked"):
            principal_for_token(connection, brief.secret, now)
        with pytest.raises(NotAuthenticated, match="disabled"):
            principal_for_token(connection, lasting.secret, now)
    issued = [p for kind, p in events_of(platform, "_platform") if kind == "ApiTokenIssued"]
    assert all(lasting.secret not in orjson.dumps(p).decode() for p in issued)


def test_rebuild_gives_the_same_read_model_and_keeps_the_credentials(platform: Platform) -> None:
    add_user(platform, "cora", Role.STUDY_COORDINATOR, frozenset({SITE_A}))
    add_user(platform, "mona", Role.MONITOR)
    with platform.unit_of_work(ADMIN) as uow:
        handlers.revoke_role(uow, cmd.RevokeRole("mona", STUDY, Role.MONITOR, reason="reassigned"))
        handlers.issue_api_token(uow, "cora")
        uow.commit()
    try_login(platform, "cora", PASSWORD)
    with pytest.raises(NotAuthenticated):
        try_login(platform, "cora", "Wrong-password-12")
    before = projections_checksum(platform.engine, platform.wiring)
    rebuild(platform.engine, platform.wiring)
    assert projections_checksum(platform.engine, platform.wiring) == before
    with platform.engine.connect() as connection:
        assert connection.execute(select(credential.c.username).order_by(credential.c.username)).scalars().all() == [
            "cora",
            "mona",
        ]
        assert [(user.username, grants) for user, grants in list_users(connection, STUDY)] == [
            ("cora", (Grant(STUDY, Role.STUDY_COORDINATOR, frozenset({SITE_A})),))
        ]
    try_login(platform, "cora", PASSWORD)


def test_demo_users_cover_every_role_and_can_sign_in(loaded: Platform) -> None:
    with loaded.unit_of_work(ADMIN) as uow:
        created = handlers.create_demo_users(uow, STUDY, [SITE_A, "0102"])
        uow.commit()
    assert {role for _, _, role, _ in created} == {role.value for role in Role} - {Role.PARTICIPANT.value}
    sites = {role: where for _, _, role, where in created}
    assert sites["study_coordinator"] == (SITE_A,) and sites["monitor"] == ("*",)
    username, password, _, _ = created[0]
    try_login(loaded, username, password)
    with loaded.engine.connect() as connection:
        user = find_user(connection, username)
    assert user is not None and user.display_name.startswith("Demo ")
