"""QueryOpened gained `addressed_to` for reconciliation; a query without one keeps the canonical bytes it had."""

from __future__ import annotations

from trialstack.ledger.canonical import canonical_payload
from trialstack.ledger.registry import encode
from trialstack.queries.events import QueryOpened

FIELDS = {
    "query_id": "Q-0101-001-001", "subject_id": "0101-001", "site_id": "0101", "form": "WEEK4.LB", "item": "K",
    "text": "Please confirm.", "check_id": None, "opened_on": "2026-02-03",
}  # fmt: skip


def test_a_query_without_an_addressee_has_the_payload_it_had_before() -> None:
    before = '{"check_id":null,"form":"WEEK4.LB","item":"K","opened_on":"2026-02-03","query_id":"Q-0101-001-001",'
    before += '"site_id":"0101","subject_id":"0101-001","text":"Please confirm."}'
    assert canonical_payload(encode(QueryOpened(**FIELDS)).payload) == before
    assert QueryOpened.model_validate_json(before).addressed_to is None


def test_a_query_addressed_to_a_role_carries_it() -> None:
    payload = encode(QueryOpened(**FIELDS, addressed_to="data_manager")).payload
    assert payload["addressed_to"] == "data_manager"
    assert QueryOpened.model_validate(payload).addressed_to == "data_manager"
