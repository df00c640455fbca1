"""`trialstack webhook …` on the demo's ledger (`trialstack demo --subjects 3`: randomization, kits, resupply), on
SQLite and PostgreSQL: an admin's subscription is blinded and never receives TreatmentAllocated, KitsRegistered or
ResupplyTriggered, while the pharmacist's unblinded one does; every delivery's signature verifies with the
`standardwebhooks` library; a bad URL is refused in one line naming it, exit 2, nothing written."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner

from tests.e2e.test_demo_sizes import fast_passwords
from tests.integration.identity.support import PASSWORD, SITE_A, SITE_B, STUDY, add_user
from tests.integration.webhooks.receiver import Receiver, always, receivers
from trialstack.bootstrap import Platform, bootstrap
from trialstack.cli.main import app
from trialstack.identity.policy import Role
from trialstack.integration.webhooks.model import receives
from trialstack.ledger import store
from trialstack.ledger.registry import is_blinded

__all__ = ["receivers"]
runner = CliRunner()
REVEALING = {"TreatmentAllocated", "KitsRegistered", "ResupplyTriggered"}


@pytest.fixture
def demo(database_url: str) -> Iterator[Platform]:
    with fast_passwords():
        result = runner.invoke(app, ["demo", "--subjects", "3", "--seed", "7", "--db", database_url])
        assert result.exit_code == 0, result.output
        platform = bootstrap(database_url=database_url)
        add_user(platform, "wh-admin", Role.ADMIN)
        add_user(platform, "wh-pharmacist", Role.UNBLINDED_PHARMACIST, frozenset({SITE_A, SITE_B}))
    yield platform
    platform.close()


def cli(database_url: str, *arguments: str, password: bool = False) -> tuple[int, str]:
    extra = ["--password-stdin"] if password else []
    result = runner.invoke(app, ["webhook", *arguments, *extra, "--db", database_url],
                           input=f"{PASSWORD}\n" if password else None)  # fmt: skip
    return result.exit_code, result.output


def add(database_url: str, receiver: Receiver, user: str, *options: str) -> str:
    code, output = cli(database_url, "add", "--study", STUDY, "--url", receiver.url, "--as", user, *options,
                       password=True)  # fmt: skip
    assert code == 0, output
    found = re.search(r"webhook (wh_[0-9a-f]+) subscribed", output)
    secret = re.search(r"(whsec_\S+)", output)
    assert found and secret, output
    receiver.secret = secret.group(1)
    return found.group(1)


def ledger(platform: Platform) -> list[tuple[int, str, str]]:
    with platform.engine.connect() as connection:
        return [(e.study_seq, e.event_type, e.payload_json) for e in store.iter_study(connection, STUDY)]


def test_a_blinded_webhook_never_receives_what_reveals_treatment_and_an_unblinded_one_does(
    demo: Platform, database_url: str, receivers: Callable[..., Receiver]
) -> None:
    blinded, unblinded = receivers(always()), receivers(always())
    before = ledger(demo)
    for url, why in (("http://example.com/hook", "host example.com is not in the allowed hosts"),
                     ("file:///etc/passwd", "only http and https")):  # fmt: skip
        code, output = cli(database_url, "add", "--study", STUDY, "--url", url, "--as", "wh-admin", password=True)
        assert code == 2 and f"webhook URL '{url}' is refused" in output and why in output, output
    code, output = cli(database_url, "add", "--study", STUDY, "--url", blinded.url, "--as", "wh-admin",
                       "--event-type", "TreatmentAllocated", password=True)  # fmt: skip
    assert code == 2 and "TreatmentAllocated reveals treatment" in output, output
    assert ledger(demo) == before  # refused before the sign-in: not even a login is recorded

    code, output = cli(database_url, "add", "--study", STUDY, "--url", unblinded.url, "--as", "wh-admin",
                       "--unblinded", password=True)  # fmt: skip
    assert code == 2 and "may not allocation.read at every site" in output, output
    blinded_id = add(database_url, blinded, "wh-admin", "--description", "sponsor data warehouse")
    unblinded_id = add(database_url, unblinded, "wh-pharmacist", "--unblinded")
    secrets = {blinded.secret, unblinded.secret}
    assert not any(str(secret)[6:] in payload for secret in secrets for _, _, payload in ledger(demo))

    for subscription_id in (blinded_id, unblinded_id):  # the demo's whole history, from the first event
        code, output = cli(database_url, "replay", "--study", STUDY, "--id", subscription_id, "--from", "1",
                           "--as", "wh-admin", password=True)  # fmt: skip
        assert code == 0 and "from study_seq 1 on again" in output, output
    code, output = cli(database_url, "deliver", "--once", "--base-seconds", "0.01", "--max-attempts", "3")
    assert code == 0 and "0 dead-lettered" in output, output

    events = ledger(demo)
    assert blinded.all_verified() and unblinded.all_verified()
    received = {event_type for _, event_type, _ in events if receives(("*",), True, event_type)}
    assert {r.event_type for r in blinded.accepted} == received
    assert not {r.event_type for r in blinded.accepted} & REVEALING
    assert not [r.event_type for r in blinded.accepted if is_blinded(r.event_type)]
    assert {r.event_type for r in unblinded.accepted} >= REVEALING
    for receiver, blind in ((blinded, True), (unblinded, False)):
        wanted = [seq for seq, event_type, _ in events if receives(("*",), blind, event_type)]
        assert receiver.accepted_seqs() == wanted  # every event once, in study order
    assert "WebhookSubscribed" not in {r.event_type for r in unblinded.accepted}

    code, output = cli(database_url, "list", "--study", STUDY)
    assert code == 0 and f"{blinded_id} active blinded {blinded.url}" in output, output
    assert f"{unblinded_id} active UNBLINDED" in output and "whsec_" not in output
    assert f"position {events[-1][0]} (0 events after it)" in output, output
    code, output = cli(database_url, "dead-letters", "--study", STUDY, "--id", blinded_id)
    assert code == 0 and "no dead letters" in output, output
    code, output = cli(database_url, "disable", "--study", STUDY, "--id", blinded_id, "--reason", "warehouse moved",
                       "--as", "wh-admin", password=True)  # fmt: skip
    assert code == 0 and "disabled" in output, output
    code, output = cli(database_url, "replay", "--study", STUDY, "--id", blinded_id, "--all", "--as", "wh-admin",
                       password=True)  # fmt: skip
    assert code == 2 and "is disabled" in output, output
