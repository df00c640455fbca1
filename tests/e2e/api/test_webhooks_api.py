"""The webhook API through HTTP with real bearer tokens, on SQLite and PostgreSQL: subscribe (the secret once, never
in the ledger), list, disable, dead letters and replays; bad URLs and filters refused naming them with nothing
written; an unblinded subscription only from a user holding allocation.read at every site."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.identity.support import (
    PASSWORD,
    SITE_A,
    SITE_B,
    STUDY,
    add_user,
    bearer,
    client_class,
    token_for,
)
from tests.integration.webhooks.receiver import Receiver, always, receivers
from tests.integration.webhooks.support import deliverer, drain, screen
from trialstack.api.app import create_app
from trialstack.bootstrap import Platform
from trialstack.identity.policy import Role
from trialstack.ledger import store

__all__ = ["receivers"]
TestClient = client_class()
BASE = f"/api/v1/studies/{STUDY}/webhooks"
PROBLEM = "application/problem+json"
PEOPLE: dict[str, tuple[Role, frozenset[str]]] = {
    "admin": (Role.ADMIN, frozenset()),
    "manager": (Role.DATA_MANAGER, frozenset()),
    "pharmacist": (Role.UNBLINDED_PHARMACIST, frozenset({SITE_A, SITE_B})),
    "pharmacist_a": (Role.UNBLINDED_PHARMACIST, frozenset({SITE_A})),
    "monitor": (Role.MONITOR, frozenset({SITE_A, SITE_B})),
}


class Api:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.client = TestClient(create_app(platform))
        self.who: dict[str, dict[str, str]] = {}
        for username, (role, sites) in PEOPLE.items():
            add_user(platform, username, role, sites, password=PASSWORD)
            self.who[username] = bearer(token_for(platform, username))

    def post(self, path: str, body: Any, *, as_: str, **headers: str) -> Any:
        return self.client.post(f"{BASE}{path}", json=body, headers={**self.who[as_], **headers})

    def get(self, path: str, *, as_: str) -> Any:
        return self.client.get(f"{BASE}{path}", headers=self.who[as_])

    def ledger(self) -> list[str]:
        with self.platform.engine.connect() as connection:
            return [e.payload_json for e in store.iter_study(connection, STUDY)]


@pytest.fixture
def api(loaded: Platform) -> Api:
    return Api(loaded)


def _refused(response: Any, status: int, field: str | None, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body.get("field") == field, body
    for word in words:
        assert word in body["detail"], body
    return body


def test_subscribe_list_disable_and_the_secret_is_shown_once(api: Api, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers(always())
    answer = api.post("", {"url": receiver.url, "event_types": ["SubjectScreened"], "description": "CTMS"},
                      as_="manager", **{"Idempotency-Key": "k-1"})  # fmt: skip
    assert answer.status_code == 201, answer.text
    made = answer.json()
    secret = made["secret"]
    assert secret.startswith("whsec_") and answer.headers["cache-control"] == "no-store"
    assert made["blinded"] is True and made["event_types"] == ["SubjectScreened"]
    assert [e["event_type"] for e in made["events"]] == ["WebhookSubscribed"]
    assert not any(secret in payload or secret.removeprefix("whsec_") in payload for payload in api.ledger())

    again = api.post("", {"url": receiver.url, "event_types": ["SubjectScreened"], "description": "CTMS"},
                     as_="manager", **{"Idempotency-Key": "k-1"})  # fmt: skip
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["subscription_id"] == made["subscription_id"] and again.json()["secret"] is None

    listed = api.get("", as_="admin").json()["webhooks"]
    assert [w["subscription_id"] for w in listed] == [made["subscription_id"]]
    assert listed[0]["created_by"] == "manager" and listed[0]["delivery"]["dead_letters"] == 0
    assert "secret" not in str(listed) and "whsec_" not in str(listed)

    receiver.secret = secret
    screen(api.platform, 2)
    drain(deliverer(api.platform))
    assert len(receiver.accepted) == 2 and receiver.all_verified()
    one = api.get(f"/{made['subscription_id']}", as_="admin").json()
    assert one["delivery"]["delivered_seq"] == receiver.accepted_seqs()[-1]

    _refused(api.post(f"/{made['subscription_id']}/disable", {"reason": ""}, as_="admin"), 422, "reason")
    disabled = api.post(f"/{made['subscription_id']}/disable", {"reason": "CTMS replaced"}, as_="admin")
    assert disabled.status_code == 200, disabled.text
    assert [e["event_type"] for e in disabled.json()["events"]] == ["WebhookDisabled"]
    assert api.post(f"/{made['subscription_id']}/disable", {"reason": "again"}, as_="admin").json()["events"] == []
    assert api.get("", as_="admin").json()["webhooks"][0]["status"] == "disabled"
    screen(api.platform, 1)
    drain(deliverer(api.platform))
    assert len(receiver.accepted) == 2
    _refused(api.post("/wh_nothing/disable", {"reason": "x"}, as_="admin"), 404, "subscription_id")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://127.0.0.1/hook", "only http and https"),
        ("127.0.0.1:9000/hook", "only http and https"),
        ("http://example.com/hook", "host example.com is not in the allowed hosts (127.0.0.1, localhost)"),
        ("http://user:secret@127.0.0.1/hook", "user name or password"),
        ("https://127.0.0.1:99999/hook", "does not parse"),
        ("http:///hook", "names no host"),
    ],
)
def test_a_url_that_cannot_receive_webhooks_is_refused_naming_it_and_nothing_is_written(
    api: Api, url: str, why: str
) -> None:
    before = api.ledger()
    _refused(api.post("", {"url": url}, as_="admin"), 422, "url", repr(url), why)
    assert api.ledger() == before


def test_the_allowed_hosts_come_from_the_environment(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALSTACK_WEBHOOK_ALLOWED_HOSTS", "hooks.example.org, *.sponsor.example")
    made = api.post("", {"url": "https://hooks.example.org/trialstack"}, as_="admin")
    assert made.status_code == 201, made.text
    assert api.post("", {"url": "https://ctms.sponsor.example/in"}, as_="admin").status_code == 201
    _refused(api.post("", {"url": "http://127.0.0.1:8000/hook"}, as_="admin"), 422, "url", "127.0.0.1")


def test_an_unblinded_subscription_needs_allocation_read_at_every_site(api: Api) -> None:
    url = "http://127.0.0.1:9/hook"
    before = api.ledger()
    _refused(api.post("", {"url": url, "unblinded": True}, as_="admin"), 403, None, "allocation.read")
    _refused(api.post("", {"url": url, "unblinded": True}, as_="pharmacist_a"), 403, None, f"not at site {SITE_B}")
    _refused(api.post("", {"url": url}, as_="monitor"), 403, None, "webhook.manage")
    _refused(api.post("", {"url": url, "event_types": ["TreatmentAllocated"]}, as_="admin"), 409, "event_types",
             "TreatmentAllocated reveals treatment")  # fmt: skip
    _refused(api.post("", {"url": url, "event_types": ["NoSuchThing"]}, as_="admin"), 422, "event_types",
             "unknown event type 'NoSuchThing'")  # fmt: skip
    _refused(api.post("", {"url": url, "event_types": ["*", "SubjectScreened"]}, as_="admin"), 422, "event_types")
    assert api.ledger() == before

    made = api.post("", {"url": url, "unblinded": True, "event_types": ["TreatmentAllocated", "SubjectScreened"]},
                    as_="pharmacist")  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["blinded"] is False and made.json()["event_types"] == ["SubjectScreened", "TreatmentAllocated"]


def test_dead_letters_are_listed_and_replayed_one_all_or_from_a_position(
    api: Api, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(always(503))
    made = api.post("", {"url": receiver.url, "event_types": ["SubjectScreened"]}, as_="admin").json()
    receiver.secret, path = made["secret"], f"/{made['subscription_id']}"
    screen(api.platform, 2)
    run = deliverer(api.platform, attempts=1)
    drain(run)
    listed = api.get(f"{path}/dead-letters", as_="manager").json()
    seqs = [row["study_seq"] for row in listed["dead_letters"]]
    assert len(seqs) == 2 and listed["hidden"] == 0
    assert {(row["state"], row["attempts"], row["last_status"]) for row in listed["dead_letters"]} == {("dead", 1, 503)}
    assert api.get("", as_="admin").json()["webhooks"][0]["delivery"]["dead_letters"] == 2

    _refused(api.post(f"{path}/replay", {}, as_="admin"), 422, None, "exactly one")
    _refused(api.post(f"{path}/replay", {"study_seq": 1}, as_="admin"), 404, "study_seq", "no dead letter")
    _refused(api.post(f"{path}/replay", {"from_seq": 10**6}, as_="admin"), 422, "from_seq", "replay goes back")
    _refused(api.post("/wh_nothing/replay", {"from_seq": 1}, as_="admin"), 404, "subscription_id")
    _refused(api.get("/wh_nothing/dead-letters", as_="admin"), 404, "subscription_id")

    receiver.behaviour = always()
    one = api.post(f"{path}/replay", {"study_seq": seqs[1]}, as_="admin")
    assert one.status_code == 202 and one.json()["dead_letters"] == [seqs[1]], one.text
    assert api.get(f"{path}/dead-letters", as_="admin").json()["dead_letters"][1]["state"] == "replaying"
    drain(run)
    assert receiver.accepted_seqs() == [seqs[1]]
    every = api.post(f"{path}/replay", {"all_dead_letters": True}, as_="admin")
    assert every.status_code == 202 and every.json()["dead_letters"] == [seqs[0]]
    drain(run)
    assert receiver.accepted_seqs() == [seqs[1], seqs[0]]
    assert api.get(f"{path}/dead-letters", as_="admin").json()["dead_letters"] == []

    again = api.post(f"{path}/replay", {"from_seq": seqs[0]}, as_="manager")
    assert again.status_code == 202 and again.json()["position_was"] >= seqs[1], again.text
    drain(run)
    assert receiver.accepted_seqs() == [seqs[1], seqs[0], *seqs]
    assert receiver.all_verified()
