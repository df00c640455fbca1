"""The fast canonicalizer writes exactly the bytes of the RFC 8785 reference, and refuses what JCS cannot keep."""

from __future__ import annotations

import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from trialstack.ledger.canonical import MAX_SAFE_INTEGER, canonical_bytes, canonical_payload
from trialstack.ledger.errors import NonCanonicalPayload

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]))
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=400)
@given(st.dictionaries(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8), json_values))
def test_fast_canonical_payload_equals_the_rfc8785_reference(payload: dict[str, Any]) -> None:
    assert canonical_payload(payload).encode("utf-8") == rfc8785.dumps(payload)


def test_control_characters_and_unicode_are_escaped_as_jcs_requires() -> None:
    payload = {"a": '\u0000\u001f\b\t\n\f\r"\\/\u007f é 😀 \u2028', "B": [1, -1, 0, True, None]}
    assert canonical_payload(payload).encode() == rfc8785.dumps(payload)


def test_keys_sort_by_utf16_code_units_even_outside_ascii() -> None:
    payload = {"\U0001f600": 1, "\uff61": 2, "a": 3}
    assert canonical_payload(payload).encode() == rfc8785.dumps(payload)
    assert canonical_bytes(payload) == rfc8785.dumps(payload)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"v": math.nan}, "payload/v: binary float"),
        ({"v": math.inf}, "payload/v: binary float"),
        ({"v": 1.5}, "payload/v: binary float"),
        ({"v": b"abc"}, "payload/v: bytes is not a JSON value"),
        ({"v": {1: "x"}}, "payload/v: object key 1 is not a string"),
        ({"v": [2**53]}, "payload/v/0: integer 9007199254740992 is outside"),
        ({"v": "\ud800"}, "payload/v: lone surrogate"),
        ({"v": {"when": object()}}, "payload/v/when: object is not a JSON value"),
    ],
)
def test_values_outside_the_canonical_subset_are_refused_with_their_path(
    payload: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(NonCanonicalPayload) as caught:
        canonical_payload(payload)
    assert fragment in caught.value.message
