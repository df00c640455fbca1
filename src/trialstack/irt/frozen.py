"""Read-only maps updated by copy, for the states `evolve` returns (the old state stays as it was).

`dict(proxy)` and `{**proxy}` walk a `MappingProxyType` key by key (about 1 ms at 10,000 entries); `proxy.copy()`
copies the dict underneath in C (about 60 µs), which keeps one randomization or one dispensing cheap at any size.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def with_entries(mapping: Mapping[K, V], entries: Mapping[K, V]) -> Mapping[K, V]:
    """A read-only copy of `mapping` with `entries` set."""
    copy: dict[K, V] = mapping.copy() if isinstance(mapping, dict | MappingProxyType) else dict(mapping)
    copy.update(entries)
    return MappingProxyType(copy)
