"""Canonical JSON (RFC 8785 / JCS) for event payloads and envelopes.

Payloads keep to JSON's exact subset: strings, integers within ±2^53, booleans, null, arrays and objects with
string keys. For it orjson with sorted keys writes the same bytes as JCS (a hypothesis test proves it against
the `rfc8785` reference) at many times its speed; objects with non-ASCII keys fall back to `rfc8785`, whose
key order (UTF-16 code units) can differ from orjson's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import rfc8785

from trialstack.ledger.errors import NonCanonicalPayload

MAX_SAFE_INTEGER = 2**53 - 1
_OPTIONS = orjson.OPT_SORT_KEYS


_SCALARS = (str, bool, int, type(None))


def _check(value: Any, path: str) -> bool:
    """Refuse what JCS cannot represent exactly; return True when an object key is non-ASCII.

    Scalars inside containers are checked inline (no call per leaf): payloads are checked on every append.
    """
    kind = type(value)
    if kind is dict:
        non_ascii = False
        for key, item in value.items():
            if type(key) is not str:
                raise NonCanonicalPayload(f"{path}: object key {key!r} is not a string")
            if not key.isascii():
                non_ascii = True
            item_kind = type(item)
            if item_kind is str:
                if not item.isascii():
                    _check_text(item, f"{path}/{key}")
            elif item_kind is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
            elif item_kind is not bool and item is not None and _check(item, f"{path}/{key}"):
                non_ascii = True
        return non_ascii
    if kind is list or kind is tuple:
        return any([_check(item, f"{path}/{index}") for index, item in enumerate(value)])
    if kind is str:
        _check_text(value, path)
        return False
    if kind is bool or value is None:
        return False
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return False
        raise NonCanonicalPayload(f"{path}: integer {value} is outside ±2^53; send it as a string")
    if kind is float:
        raise NonCanonicalPayload(f"{path}: binary float {value!r}; send decimals as strings")
    raise NonCanonicalPayload(f"{path}: {kind.__name__} is not a JSON value")


def _check_text(value: str, path: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NonCanonicalPayload(f"{path}: lone surrogate in string") from None


def canonical_payload(payload: Mapping[str, Any]) -> str:
    """Return the JCS text of a payload, or raise NonCanonicalPayload naming the offending path."""
    if type(payload) is not dict:
        payload = dict(payload)
    non_ascii_keys = _check(payload, "payload")
    if non_ascii_keys:
        return rfc8785.dumps(payload).decode("utf-8")
    return orjson.dumps(payload, option=_OPTIONS).decode("utf-8")


def canonical_bytes(value: Any) -> bytes:
    """JCS bytes of any value in the supported subset (used for content hashes outside the ledger too)."""
    if _check(value, "value"):
        return rfc8785.dumps(value)
    return orjson.dumps(value, option=_OPTIONS)
