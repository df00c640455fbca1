"""The pure side of webhooks: which URLs and filters may be subscribed, what a subscription receives (blinding
included), the decisions and their fold, the backoff, and a message signed so `standardwebhooks` verifies it."""

from __future__ import annotations

from random import Random

import orjson
import pytest
from standardwebhooks import Webhook

import trialstack.bootstrap  # noqa: F401  (registers every context's event types, as a running platform does)
from trialstack.clock import SystemClock
from trialstack.errors import InvalidInput, NotFound
from trialstack.integration.webhooks import commands as cmd
from trialstack.integration.webhooks import events as ev
from trialstack.integration.webhooks.delivery import message_body, message_id, signed_headers
from trialstack.integration.webhooks.handlers import new_secret
from trialstack.integration.webhooks.model import (
    Subscription,
    WebhookRefused,
    WebhookUrlRefused,
    check_event_types,
    check_url,
    decide_disable,
    decide_subscribe,
    evolve,
    host_allowed,
    receives,
)
from trialstack.integration.webhooks.settings import RetryPolicy, allowed_hosts
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import is_blinded

HOSTS = ("127.0.0.1", "localhost")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "https://localhost/a?b=c", "HTTP://LOCALHOST:1/x", " http://127.0.0.1/ "]
)
def test_http_and_https_urls_on_allowed_hosts_are_accepted(url: str) -> None:
    assert check_url(url, HOSTS) == url.strip()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "needs a URL"),
        ("ftp://127.0.0.1/x", "only http and https URLs receive webhooks, not ftp:"),
        ("javascript:alert(1)", "not javascript:"),
        ("//127.0.0.1/x", "not a URL without one"),
        ("http://10.0.0.8/x", "host 10.0.0.8 is not in the allowed hosts (127.0.0.1, localhost)"),
        ("http://127.0.0.1.evil.example/x", "is not in the allowed hosts"),
        ("http://a:b@127.0.0.1/x", "user name or password"),
        ("http://127.0.0.1@evil.example/x", "user name or password"),
        ("http://127.0.0.1/x#top", "fragment"),
        ("http://127.0.0.1:0x50/x", "does not parse"),
        ("http://[::1/x", "does not parse"),
        ("http://127.0.0.1/a b", "spaces or control characters"),
        ("http://127.0.0.1/" + "a" * 2000, "longer than 2000"),
    ],
)
def test_a_url_that_cannot_receive_webhooks_is_refused_naming_it_and_why(url: str, why: str) -> None:
    with pytest.raises(WebhookUrlRefused) as refused:
        check_url(url, HOSTS)
    assert why in refused.value.message and refused.value.field == "url"
    if url:
        assert repr(url.strip())[:60] in refused.value.message


def test_allowed_hosts_match_exactly_or_under_a_wildcard() -> None:
    hosts = ("hooks.example.org", "*.sponsor.example")
    assert host_allowed("HOOKS.example.org", hosts) and host_allowed("ctms.eu.sponsor.example", hosts)
    assert not host_allowed("sponsor.example", hosts) and not host_allowed("evilsponsor.example", hosts)
    assert not host_allowed("example.org", hosts)
    assert allowed_hosts({}) == ("127.0.0.1", "localhost")
    assert allowed_hosts({"TRIALSTACK_WEBHOOK_ALLOWED_HOSTS": " A.example , ,b.example"}) == ("a.example", "b.example")


def test_the_filter_names_known_event_types_or_everything_and_a_blinded_one_nothing_that_unblinds() -> None:
    assert check_event_types(["SubjectScreened", "QueryOpened", "SubjectScreened"], True) == (
        "QueryOpened",
        "SubjectScreened",
    )
    assert check_event_types([" * "], True) == ("*",)
    assert check_event_types(["TreatmentAllocated"], False) == ("TreatmentAllocated",)
    for names, error, words in (
        ([], InvalidInput, "at least one"),
        (["*", "QueryOpened"], InvalidInput, "alone"),
        (["Nope"], InvalidInput, "unknown event type 'Nope'"),
        (["WebhookSubscribed"], InvalidInput, "not delivered to webhooks"),
        (["TreatmentAllocated"], WebhookRefused, "TreatmentAllocated reveals treatment"),
    ):
        with pytest.raises(error, match=words):
            check_event_types(names, True)


def test_a_blinded_subscription_never_receives_an_event_that_reveals_treatment_whatever_its_filter() -> None:
    for revealing in ("TreatmentAllocated", "KitsRegistered", "ResupplyTriggered", "NotAKnownEvent"):
        assert is_blinded(revealing)
        assert not receives(("*",), True, revealing)
        assert not receives((revealing,), True, revealing)
    assert receives(("*",), False, "TreatmentAllocated")
    assert receives(("*",), True, "SubjectScreened") and not receives(("QueryOpened",), True, "SubjectScreened")
    assert not receives(("*",), False, "WebhookSubscribed")


def test_subscribe_and_disable_decide_and_fold() -> None:
    empty = Subscription("HTN-201", "wh_1")
    command = cmd.SubscribeWebhook("http://127.0.0.1/h", ("SubjectScreened",), False, " CTMS ")
    [subscribed] = decide_subscribe(empty, command, secret_ref="ref-1", username="ada", allowed_hosts=HOSTS)
    assert subscribed == ev.WebhookSubscribed(
        subscription_id="wh_1", url="http://127.0.0.1/h", event_types=["SubjectScreened"], blinded=True,
        description="CTMS", secret_ref="ref-1", created_by="ada",
    )  # fmt: skip
    state = evolve(subscribed, empty)
    assert state.exists and state.blinded and not state.disabled
    with pytest.raises(WebhookRefused, match="already exists"):
        decide_subscribe(state, command, secret_ref="r", username="ada", allowed_hosts=HOSTS)
    with pytest.raises(InvalidInput, match="needs a reason"):
        decide_disable(state, cmd.DisableWebhook("wh_1", " "), "ada")
    [disabled] = decide_disable(state, cmd.DisableWebhook("wh_1", "retired"), "ada")
    assert evolve(disabled, state).disabled
    assert decide_disable(evolve(disabled, state), cmd.DisableWebhook("wh_1", "again"), "ada") == []
    with pytest.raises(NotFound):
        decide_disable(empty, cmd.DisableWebhook("wh_1", "retired"), "ada")
    with pytest.raises(InvalidInput, match="control character"):
        decide_disable(state, cmd.DisableWebhook("wh_1", "re\x00tired"), "ada")
    with pytest.raises(InvalidInput, match="control character"):
        decide_subscribe(empty, cmd.SubscribeWebhook("http://127.0.0.1/h", description="a\x00b"), secret_ref="r",
                         username="ada", allowed_hosts=HOSTS)  # fmt: skip
    unblinded = decide_subscribe(empty, cmd.SubscribeWebhook("http://127.0.0.1/h", ("*",), True), secret_ref="r",
                                 username="pat", allowed_hosts=HOSTS)  # fmt: skip
    assert isinstance(unblinded[0], ev.WebhookSubscribed) and unblinded[0].blinded is False


def test_the_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_seconds=1, cap_seconds=30, max_attempts=10, timeout_seconds=5)
    rng = Random(3)
    for failures, ceiling in ((1, 1), (2, 2), (3, 4), (5, 16), (6, 30), (40, 30), (10_000, 30)):
        waits = [policy.delay(failures, rng) for _ in range(200)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
        assert len(set(waits)) > 100  # jittered, not one value
    assert RetryPolicy.from_env({}) == RetryPolicy()
    env = {"TRIALSTACK_WEBHOOK_BASE_SECONDS": "0.5", "TRIALSTACK_WEBHOOK_MAX_ATTEMPTS": "4"}
    assert RetryPolicy.from_env(env, timeout_seconds=2) == RetryPolicy(0.5, 3600, 4, 2)
    for bad, words in (
        ({"TRIALSTACK_WEBHOOK_BASE_SECONDS": "soon"}, "must be a number"),
        ({"TRIALSTACK_WEBHOOK_MAX_ATTEMPTS": "2.5"}, "whole number"),
        ({"TRIALSTACK_WEBHOOK_MAX_ATTEMPTS": "0"}, "1 to 100"),
        ({"TRIALSTACK_WEBHOOK_BASE_SECONDS": "90", "TRIALSTACK_WEBHOOK_MAX_DELAY_SECONDS": "60"}, "base"),
        ({"TRIALSTACK_WEBHOOK_TIMEOUT_SECONDS": "0"}, "timeout"),
    ):
        with pytest.raises(InvalidInput, match=words):
            RetryPolicy.from_env(bad)


def test_a_message_is_signed_as_standard_webhooks_says() -> None:
    event = RecordedEvent(
        7, "HTN-201", 12, "subject", "HTN-201/0101-001", 1, "SubjectScreened", 1, '{"subject_id":"0101-001"}',
        "user:cora", "study_coordinator", None, None, "2026-01-05T09:00:00.000000Z", "2026-01-05T09:00:00.000000Z",
        None, None, "corr", None, "0" * 64, "ab" * 32,
    )  # fmt: skip
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) == 6 + 44
    body = message_body(event)
    headers = signed_headers(secret, event, body, SystemClock())
    assert headers["webhook-id"] == message_id(event) == "evt_" + "ab" * 32
    assert headers["webhook-signature"].startswith("v1,")
    verified = Webhook(secret).verify(body, headers)
    assert verified == orjson.loads(body)
    assert verified["type"] == "SubjectScreened" and verified["data"]["study_seq"] == 12
    assert verified["data"]["payload"] == {"subject_id": "0101-001"}
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()).verify(body, headers)
