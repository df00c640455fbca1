"""Commands of the queries context."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpenQuery:
    subject_id: str
    form: str
    item: str
    text: str


@dataclass(frozen=True)
class AnswerQuery:
    query_id: str
    text: str


@dataclass(frozen=True)
class RequeryQuery:
    query_id: str
    text: str


@dataclass(frozen=True)
class CloseQuery:
    query_id: str
    resolution: str


@dataclass(frozen=True)
class CancelQuery:
    query_id: str
    reason: str
