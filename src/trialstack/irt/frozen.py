"""Read-only maps updated by copy, for the states `evolve` returns (the old state stays as it was).

Small maps (strata, factor levels, sites) are copied whole by `with_entries`; maps with an entry per subject or
kit are a `FrozenMap`, which copies only the shard an update falls in.

`dict(proxy)` and `{**proxy}` walk a `MappingProxyType` key by key (about 1 ms at 10,000 entries); `proxy.copy()`
copies the dict underneath in C (about 60 µs), which keeps one randomization or one dispensing cheap at any size.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def with_entries(mapping: Mapping[K, V], entries: Mapping[K, V]) -> Mapping[K, V]:
    """A read-only copy of `mapping` with `entries` set."""
    copy: dict[K, V] = mapping.copy() if isinstance(mapping, dict | MappingProxyType) else dict(mapping)
    copy.update(entries)
    return MappingProxyType(copy)


SHARDS = 64


def _shard(key: object) -> int:
    """A stable shard (not `hash()`, which differs per process for text), so iteration order is reproducible."""
    return zlib.crc32(str(key).encode()) % SHARDS


class FrozenMap(Mapping[K, V]):
    """A read-only map whose `set` copies one of 64 shards, not the whole map: a state with an entry per subject or
    kit grows by one entry at a cost that does not grow with the number of entries (to about 10^5 of them)."""

    __slots__ = ("_length", "_shards")

    def __init__(self, shards: tuple[Mapping[K, V], ...] | None = None, length: int = 0) -> None:
        self._shards: tuple[Mapping[K, V], ...] = shards or tuple(MappingProxyType({}) for _ in range(SHARDS))
        self._length = length

    def __getitem__(self, key: K) -> V:
        return self._shards[_shard(key)][key]

    def __iter__(self) -> Iterator[K]:
        """In key order: the same on every run and every machine (the shards' order is not meaningful)."""
        return iter(sorted(key for shard in self._shards for key in shard))  # type: ignore[type-var]

    def __len__(self) -> int:
        return self._length

    def each(self) -> Iterator[V]:
        """Every value, shard by shard (a stable order, not the keys'): for scans that sort or count what they find,
        without sorting the keys and looking each one up again as `values()` does."""
        for shard in self._shards:
            yield from shard.values()

    def set(self, entries: Mapping[K, V]) -> FrozenMap[K, V]:
        """A new map with `entries` set; only the shards they fall in are copied."""
        grouped: dict[int, dict[K, V]] = {}
        for key, value in entries.items():
            grouped.setdefault(_shard(key), {})[key] = value
        shards = list(self._shards)
        length = self._length
        for index, group in grouped.items():
            length += sum(key not in shards[index] for key in group)
            shards[index] = with_entries(shards[index], group)
        return FrozenMap(tuple(shards), length)
