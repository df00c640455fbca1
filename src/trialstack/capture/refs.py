"""How visit and form instances are named in a casebook, in URLs and in event payloads.

A visit instance is its visit id (`WEEK2`), or `UNSCHED.2` for the second instance of a repeating visit.
A form instance at a visit is `WEEK2.VS` / `UNSCHED.2.VS`; a log form record (adverse events, medications) is
`AE.3`. Identifiers are upper case and start with a letter, so the forms cannot be confused.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialstack.errors import InvalidInput


@dataclass(frozen=True, order=True)
class VisitKey:
    visit_id: str
    repeat: int = 0

    def __str__(self) -> str:
        return f"{self.visit_id}.{self.repeat}" if self.repeat else self.visit_id

    @classmethod
    def parse(cls, text: str) -> VisitKey:
        parts = text.split(".")
        if len(parts) == 1 and _identifier(parts[0]):
            return cls(parts[0])
        if len(parts) == 2 and _identifier(parts[0]) and _number(parts[1]) and int(parts[1]) > 0:
            return cls(parts[0], int(parts[1]))
        raise InvalidInput(f"{text!r} is not a visit: expected VISIT or VISIT.N", field="visit")


@dataclass(frozen=True, order=True)
class FormKey:
    """A form instance: at a visit (`visit` set) or a log record (`record` ≥ 1)."""

    form_id: str
    visit: VisitKey | None = None
    record: int = 0

    def __str__(self) -> str:
        if self.visit is None:
            return f"{self.form_id}.{self.record}"
        return f"{self.visit}.{self.form_id}"

    @property
    def is_log(self) -> bool:
        return self.visit is None

    @classmethod
    def parse(cls, text: str) -> FormKey:
        parts = text.split(".")
        if len(parts) == 2 and _identifier(parts[0]) and _number(parts[1]) and int(parts[1]) > 0:
            return cls(parts[0], None, int(parts[1]))
        if len(parts) == 2 and _identifier(parts[0]) and _identifier(parts[1]):
            return cls(parts[1], VisitKey(parts[0]))
        if len(parts) == 3 and _identifier(parts[2]):
            return cls(parts[2], VisitKey.parse(f"{parts[0]}.{parts[1]}"))
        raise InvalidInput(f"{text!r} is not a form: expected VISIT.FORM, VISIT.N.FORM or LOGFORM.N", field="form")


def _identifier(text: str) -> bool:
    return bool(text) and text[0].isalpha() and text.isupper() and all(c.isalnum() or c == "_" for c in text)


def subject_stream_id(study_id: str, subject_id: str) -> str:
    return f"{study_id}/{subject_id}"


def _number(text: str) -> bool:
    """ASCII digits only: `str.isdigit` also accepts superscripts such as '²', which `int()` refuses."""
    return text.isascii() and text.isdigit()
