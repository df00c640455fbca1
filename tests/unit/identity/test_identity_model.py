"""Pure identity rules: password policy, lockout, grants and blinding, tokens; the throttle, cookies and TOTP."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from functools import reduce

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.identity import commands as cmd
from trialstack.identity import events as ev
from trialstack.identity.crypto import new_api_token, token_sha256, totp_step
from trialstack.identity.model import (
    LOCKOUT_PERIOD,
    MAX_CONSECUTIVE_FAILURES,
    Access,
    Account,
    PasswordPolicyViolation,
    check_password,
    decide_authentication,
    decide_grant,
    decide_register,
    decide_revoke,
    evolve,
    evolve_access,
    password_problems,
    refusal,
)
from trialstack.identity.policy import (
    PERMISSIONS,
    UNBLINDED_ROLES,
    Action,
    Forbidden,
    Grant,
    Principal,
    Role,
    authorize,
)
from trialstack.identity.sessions import ACTIVITY_RESOLUTION, SessionClaim, SessionSigner, idle_expired, needs_touch
from trialstack.identity.throttle import attempt_key
from trialstack.identity.throttle import refusal as refusal_of_attempts

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ALICE = reduce(evolve, [ev.UserRegistered(username="alice", display_name="Alice Adams")], Account("alice"))


def attempt(state: Account, failure: cmd.Failure | None, now: datetime = NOW) -> tuple[Account, list[str]]:
    command = cmd.RecordAuthentication("alice", cmd.Purpose.LOGIN, failure, now, session_id="s1")
    events = decide_authentication(state, command)
    return reduce(evolve, events, state), [type(e).__name__ for e in events]


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Short-1", "at least 12"),
        ("alice-Is-Great-9", "contains the username"),
        ("ALICE-is-great-9", "contains the username"),
        ("abcdefghijklmnop", "one kind of character"),
        ("123456789012345", "one kind of character"),
    ],
)
def test_password_policy_refuses_weak_passwords_with_a_reason(password: str, problem: str) -> None:
    with pytest.raises(PasswordPolicyViolation, match=problem):
        check_password("alice", password)


@given(st.text(min_size=12, max_size=40).filter(lambda p: "bob" not in p.lower()))
def test_any_long_mixed_password_without_the_username_is_accepted(password: str) -> None:
    mixed = password + "a1"
    assert password_problems("bob", mixed) == []


def test_registering_keeps_the_password_out_of_the_event() -> None:
    events = decide_register(Account("carol"), cmd.RegisterUser("carol", " Carol Chen ", "Blood-pressure-140"))
    assert events == [ev.UserRegistered(username="carol", display_name="Carol Chen")]
    assert "Blood" not in events[0].model_dump_json()
    with pytest.raises(InvalidInput, match="username"):
        decide_register(Account("Carol"), cmd.RegisterUser("Carol", "Carol", "Blood-pressure-140"))
    with pytest.raises(DomainRuleViolation, match="already exists"):
        decide_register(ALICE, cmd.RegisterUser("alice", "Alice", "Blood-pressure-140"))


def test_five_consecutive_failures_lock_the_account_for_the_lockout_period() -> None:
    state = ALICE
    for count in range(1, MAX_CONSECUTIVE_FAILURES):
        state, kinds = attempt(state, cmd.Failure.PASSWORD)
        assert kinds == ["LoginFailed"] and state.failures == count
    state, kinds = attempt(state, cmd.Failure.TOTP)
    assert kinds == ["LoginFailed", "UserLockedOut"]
    assert refusal(state, NOW + LOCKOUT_PERIOD - timedelta(seconds=1)) == "locked"
    assert refusal(state, NOW + LOCKOUT_PERIOD) is None
    with pytest.raises(DomainRuleViolation):
        attempt(state, None)


def test_a_success_resets_the_count_so_only_consecutive_failures_lock() -> None:
    state = ALICE
    for _ in range(MAX_CONSECUTIVE_FAILURES - 1):
        state, _kinds = attempt(state, cmd.Failure.PASSWORD)
    state, kinds = attempt(state, None)
    assert kinds == ["UserLoggedIn"] and state.failures == 0
    state, kinds = attempt(state, cmd.Failure.PASSWORD)
    assert kinds == ["LoginFailed"] and state.failures == 1


def test_signature_failures_count_towards_the_same_lockout() -> None:
    state = evolve(ALICE, ev.LoginFailed(username="alice", reason="password", consecutive_failures=4))
    command = cmd.RecordAuthentication("alice", cmd.Purpose.SIGNATURE, cmd.Failure.PASSWORD, NOW)
    assert [type(e).__name__ for e in decide_authentication(state, command)] == ["SignatureFailed", "UserLockedOut"]


def test_disabled_accounts_are_refused_before_any_check() -> None:
    state = evolve(ALICE, ev.UserDisabled(username="alice"))
    assert refusal(state, NOW) == "disabled" and refusal(Account("nobody"), NOW) == "unknown"


def grant(access: Access, role: Role, *sites: str, known: frozenset[str] | None = None) -> Access:
    events = decide_grant(ALICE, access, cmd.GrantRole("alice", "S1", role, frozenset(sites)), known)
    return reduce(evolve_access, events, access)


def test_site_roles_need_named_sites_that_exist_in_the_loaded_study() -> None:
    access = Access("S1", "alice")
    with pytest.raises(InvalidInput, match="at least one --site"):
        grant(access, Role.STUDY_COORDINATOR)
    with pytest.raises(InvalidInput, match="site 9999 is not a site of study S1"):
        grant(access, Role.STUDY_COORDINATOR, "9999", known=frozenset({"0101"}))
    access = grant(access, Role.STUDY_COORDINATOR, "0101", known=frozenset({"0101", "0102"}))
    access = grant(access, Role.STUDY_COORDINATOR, "0102")
    assert access.roles == {Role.STUDY_COORDINATOR: frozenset({"0101", "0102"})}
    again = cmd.GrantRole("alice", "S1", Role.STUDY_COORDINATOR, frozenset({"0101"}))
    assert decide_grant(ALICE, access, again, None) == []


def test_nobody_is_blinded_and_unblinded_in_the_same_study() -> None:
    access = grant(Access("S1", "alice"), Role.INVESTIGATOR, "0101")
    with pytest.raises(DomainRuleViolation, match="either blinded or unblinded"):
        grant(access, Role.UNBLINDED_PHARMACIST, "0101")
    pharmacist = grant(Access("S1", "alice"), Role.UNBLINDED_PHARMACIST, "0101")
    with pytest.raises(DomainRuleViolation, match="either blinded or unblinded"):
        grant(pharmacist, Role.MONITOR)


def revoke(access: Access, *sites: str) -> Access:
    events = decide_revoke(access, cmd.RevokeRole("alice", "S1", Role.INVESTIGATOR, frozenset(sites)))
    return reduce(evolve_access, events, access)


def test_revoking_sites_narrows_and_revoking_the_last_site_removes_the_role() -> None:
    access = grant(Access("S1", "alice"), Role.INVESTIGATOR, "0101", "0102")
    access = revoke(access, "0102")
    assert access.roles == {Role.INVESTIGATOR: frozenset({"0101"})}
    access = revoke(access, "0101")
    assert access.roles == {}
    with pytest.raises(NotFound):
        decide_revoke(access, cmd.RevokeRole("alice", "S1", Role.INVESTIGATOR))


@pytest.mark.parametrize("role", list(Role))
def test_only_unblinded_roles_may_read_allocations(role: Role) -> None:
    principal = Principal("user:u", "u", "U", (grant_of(role),))
    assert principal.is_unblinded("S1") == (role in UNBLINDED_ROLES)
    if role in UNBLINDED_ROLES:
        authorize(principal, Action.ALLOCATION_READ, "S1", "0101")
    else:
        assert Action.ALLOCATION_READ not in PERMISSIONS[role]
        with pytest.raises(Forbidden):
            authorize(principal, Action.ALLOCATION_READ, "S1", "0101")


def grant_of(role: Role) -> Grant:
    return Grant("S1", role, frozenset({"0101"}))


def test_a_site_a_grant_does_not_authorize_at_site_b() -> None:
    principal = Principal("user:cora", "cora", "Cora", (Grant("S1", Role.STUDY_COORDINATOR, frozenset({"0101"})),))
    authorize(principal, Action.DATA_ENTER, "S1", "0101")
    with pytest.raises(Forbidden, match="at site 0102"):
        authorize(principal, Action.DATA_ENTER, "S1", "0102")
    with pytest.raises(Forbidden):
        authorize(principal, Action.DATA_ENTER, "S2", "0101")


def test_tokens_are_random_and_only_their_hash_is_kept() -> None:
    first, second = new_api_token(), new_api_token()
    assert first.secret != second.secret and first.secret.startswith(f"tsk_{first.token_id}_")
    assert first.sha256 == token_sha256(first.secret) and first.secret not in first.sha256


def test_throttle_refuses_after_the_limit_and_forgets_after_the_window() -> None:
    window = timedelta(minutes=5)
    failures = [NOW, NOW + timedelta(seconds=10), NOW + timedelta(seconds=20)]
    assert refusal_of_attempts(failures[:2], NOW + timedelta(minutes=1), 3, window) is None
    refused = refusal_of_attempts(failures, NOW + timedelta(minutes=1), 3, window)
    assert refused is not None and refused.retry_after == 240
    # the oldest failure leaves the window exactly `window` after it happened; the refusal ends with it
    assert refusal_of_attempts(list(reversed(failures)), NOW + window - timedelta(microseconds=1), 3, window)
    assert refusal_of_attempts(failures, NOW + window, 3, window) is None
    assert refusal_of_attempts(failures, NOW + window, 2, window) is not None


@given(
    st.lists(st.integers(min_value=0, max_value=900), max_size=30),
    st.integers(min_value=0, max_value=900),
    st.integers(min_value=1, max_value=12),
)
def test_throttle_retry_after_is_when_the_count_drops_below_the_limit(offsets: list[int], at: int, limit: int) -> None:
    window = timedelta(minutes=5)
    failures = [NOW + timedelta(seconds=s) for s in offsets if s <= at]
    now = NOW + timedelta(seconds=at)
    refused = refusal_of_attempts(failures, now, limit, window)
    in_window = [f for f in failures if now - f < window]
    assert (refused is not None) == (len(in_window) >= limit)
    if refused is not None:
        later = now + timedelta(seconds=refused.retry_after)
        assert refusal_of_attempts(failures, later, limit, window) is None
        assert refusal_of_attempts(failures, later - timedelta(seconds=1), limit, window) is not None


def test_attempt_keys_ignore_the_username_case_and_keep_the_text_out() -> None:
    assert attempt_key("Alice", "10.0.0.1") == attempt_key("alice ", "10.0.0.1")
    assert attempt_key("alice", "10.0.0.1") != attempt_key("alice", "10.0.0.2")
    assert attempt_key("alice", "10.0.0.1") != attempt_key("alice1", "0.0.0.1")
    assert "alice" not in attempt_key("alice", "10.0.0.1") and len(attempt_key("x" * 500, "::1")) == 64


def test_a_session_expires_after_the_idle_timeout_and_activity_is_written_rarely() -> None:
    idle = timedelta(minutes=15)
    assert not idle_expired(NOW, NOW + idle - timedelta(microseconds=1), idle)
    assert idle_expired(NOW, NOW + idle, idle)
    assert not needs_touch(NOW, NOW + ACTIVITY_RESOLUTION - timedelta(microseconds=1), idle)
    assert needs_touch(NOW, NOW + ACTIVITY_RESOLUTION, idle)
    short = timedelta(minutes=1)
    assert needs_touch(NOW, NOW + short / 4, short) and not needs_touch(NOW, NOW + short / 5, short)


def changed_at(text: str, position: int) -> str:
    """`text` with one character replaced by another base64url character."""
    return text[:position] + ("A" if text[position] != "A" else "B") + text[position + 1 :]


def test_session_cookies_are_signed_and_csrf_tokens_bound_to_the_session() -> None:
    signer = SessionSigner("k" * 40)
    cookie = signer.dumps(SessionClaim("sid-1", "alice"))
    assert signer.loads(cookie) == SessionClaim("sid-1", "alice")
    # The last base64 character of the 20-byte signature carries 2 unused bits, so changing it may decode to the
    # same bytes; a character in the middle always changes them (checked here, so the tamper cannot be a no-op).
    start = cookie.rindex(".") + 1
    middle = (start + len(cookie)) // 2
    forged = changed_at(cookie, middle)
    assert base64.urlsafe_b64decode(forged[start:] + "==") != base64.urlsafe_b64decode(cookie[start:] + "==")
    assert signer.loads(forged) is None
    assert signer.loads(changed_at(cookie, 0)) is None
    assert SessionSigner("x" * 40).loads(cookie) is None
    assert signer.csrf_valid("sid-1", signer.csrf_token("sid-1"))
    assert not signer.csrf_valid("sid-2", signer.csrf_token("sid-1")) and not signer.csrf_valid("sid-1", None)


def test_totp_codes_are_accepted_once_within_one_step_of_drift() -> None:
    secret = pyotp.random_base32()
    code = pyotp.TOTP(secret).at(NOW)
    step = totp_step(secret, code, NOW, None)
    assert step is not None
    assert totp_step(secret, code, NOW, step) is None
    assert totp_step(secret, code, NOW + timedelta(seconds=30), None) == step
    assert totp_step(secret, code, NOW + timedelta(minutes=5), None) is None
    assert totp_step(secret, "12345x", NOW, None) is None
