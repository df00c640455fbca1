"""Pages of a long list: which rows a `?page=N` asks for, and what the pager shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query

PAGE_SIZE = 50
PageNumber = Annotated[int, Query(alias="page", description="Which page of the list (from 1).")]


@dataclass(frozen=True)
class Paging:
    number: int
    size: int
    total: int

    @classmethod
    def of(cls, requested: int, total: int, size: int | None = None) -> Paging:
        """Page `requested` (from 1), moved inside the pages that exist; PAGE_SIZE rows a page by default."""
        size = size or PAGE_SIZE
        last = max(1, -(-total // size))
        return cls(min(max(1, requested), last), size, total)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        """1-based position of the first row shown (0 when there is none)."""
        return self.offset + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.total, self.offset + self.size)

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None
