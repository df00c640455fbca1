"""`trialstack user ...` and `trialstack token ...` as an administrator runs them (SQLite and PostgreSQL)."""

from __future__ import annotations

from typer.testing import CliRunner

from tests.conftest import REPO_ROOT
from tests.integration.identity.support import PASSWORD
from trialstack.bootstrap import bootstrap
from trialstack.cli.main import app
from trialstack.identity.authentication import login, principal_for_token
from trialstack.identity.model import NotAuthenticated
from trialstack.ledger import store
from trialstack.ledger.envelope import Actor

runner = CliRunner()
DEMO_STUDY = str(REPO_ROOT / "studies" / "demo" / "study.yaml")


def run(database_url: str, *args: str, password: str | None = None) -> str:
    result = runner.invoke(app, [*args, "--db", database_url], input=f"{password}\n" if password else None)
    assert result.exit_code == 0, result.output
    return result.output


def test_user_add_grant_list_disable(database_url: str) -> None:
    loaded = runner.invoke(app, ["study", "load", DEMO_STUDY, "--db", database_url])
    assert loaded.exit_code == 0, loaded.output
    add = ["user", "add", "cora", "--role", "study_coordinator", "--study", "HTN-201", "--site", "0101"]
    output = run(database_url, *add, "--name", "Cora Coordinator", "--password-stdin", password=PASSWORD)
    assert "user cora created: study_coordinator in HTN-201 at 0101" in output
    unknown = runner.invoke(
        app,
        [
            "user",
            "grant",
            "cora",
            "--role",
            "study_coordinator",
            "--study",
            "HTN-201",
            "--site",
            "0199",
            "--db",
            database_url,
        ],
    )
    assert unknown.exit_code == 2 and "site 0199 is not a site of study HTN-201" in unknown.output
    weak = runner.invoke(
        app,
        [
            "user",
            "add",
            "ivan",
            "--role",
            "investigator",
            "--study",
            "HTN-201",
            "--site",
            "0101",
            "--password-stdin",
            "--db",
            database_url,
        ],
        input="ivan-password-1\n",
    )
    assert weak.exit_code == 2 and "contains the username" in weak.output
    run(database_url, "user", "grant", "cora", "--role", "study_coordinator", "--study", "HTN-201", "--site", "0102")
    listing = run(database_url, "user", "list", "--study", "HTN-201")
    assert "cora" in listing and "Cora Coordinator" in listing and "0101,0102" in listing
    run(database_url, "user", "disable", "cora", "--reason", "left the site")
    assert "disabled" in run(database_url, "user", "list")
    platform = bootstrap(database_url=database_url)
    try:
        with platform.engine.connect() as connection:
            platform_events = list(store.iter_study(connection, "_platform"))
            study_events = [e for e in store.iter_study(connection, "HTN-201") if e.stream_type == "access"]
        with platform.unit_of_work(Actor("system:test", "system")) as uow:
            try:
                login(uow, "cora", PASSWORD)
                raise AssertionError("a disabled user signed in")
            except NotAuthenticated:
                pass
    finally:
        platform.close()
    assert [e.event_type for e in platform_events] == ["UserRegistered", "UserDisabled"]
    assert platform_events[-1].reason == "left the site" and platform_events[-1].actor_id.startswith("os:")
    assert [e.payload["sites"] for e in study_events] == [["0101"], ["0102"]]


def test_token_create_prints_it_once_and_revoke_kills_it(database_url: str) -> None:
    run(
        database_url,
        "user",
        "add",
        "feed",
        "--role",
        "data_manager",
        "--study",
        "HTN-201",
        "--password-stdin",
        password=PASSWORD,
    )
    output = run(database_url, "token", "create", "feed", "--expires", "30", "--label", "lab-feed")
    secret = output.strip().splitlines()[-1]
    assert secret.startswith("tsk_")
    listing = run(database_url, "token", "list", "feed")
    assert secret not in listing and "lab-feed" in listing
    platform = bootstrap(database_url=database_url)
    try:
        with platform.engine.connect() as connection:
            principal, token_id = principal_for_token(connection, secret, platform.clock.now())
        assert principal.username == "feed"
        run(database_url, "token", "revoke", token_id, "--reason", "rotation")
        with platform.engine.connect() as connection:
            try:
                principal_for_token(connection, secret, platform.clock.now())
                raise AssertionError("a revoked token still works")
            except NotAuthenticated as refused:
                assert "revoked" in refused.message
            ledger_text = "".join(e.payload_json for e in store.iter_study(connection, "_platform"))
    finally:
        platform.close()
    assert secret not in ledger_text


def test_totp_and_password_reset(database_url: str) -> None:
    run(
        database_url,
        "user",
        "add",
        "mona",
        "--role",
        "monitor",
        "--study",
        "HTN-201",
        "--password-stdin",
        password=PASSWORD,
    )
    uri = run(database_url, "user", "totp", "mona").strip().splitlines()[-1]
    assert uri.startswith("otpauth://totp/TrialStack:mona?secret=")
    run(database_url, "user", "password", "mona", "--password-stdin", password="Another-long-secret-9")
    assert "yes" in run(database_url, "user", "list")
    assert "second factor off" in run(database_url, "user", "totp", "mona", "--disable")
