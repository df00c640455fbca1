"""Item values: what a site types, checked against the item definition and kept as canonical text.

Values travel in events as text (decimals and dates as strings, as in ODM), so the ledger never holds a binary
float; `typed` turns the text into the Python value the rule language reads.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

from trialstack.errors import InvalidInput
from trialstack.protocol.definition import Codelist, Item, ItemType

_INTEGER = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def normalize(item: Item, raw: str, codelist: Codelist | None, field: str) -> str:
    """The canonical text of a value typed for `item`, or InvalidInput naming the field and the reason."""
    text = raw.strip()
    if not text:
        raise InvalidInput(f"{item.label}: empty value; leave the item out or mark it not done", field=field)
    kind = item.type
    if kind is ItemType.INTEGER:
        if not _INTEGER.match(text):
            raise InvalidInput(f"{item.label}: {raw!r} is not a whole number", field=field)
        value = str(int(text))
        _check_digits(item, value, field)
        return value
    if kind is ItemType.DECIMAL:
        if not _DECIMAL.match(text):
            raise InvalidInput(f"{item.label}: {raw!r} is not a number", field=field)
        number = Decimal(text)
        _check_fraction(item, number, field)
        return format(number, "f")
    if kind is ItemType.DATE:
        return _date(item, text, field).isoformat()
    if kind is ItemType.DATETIME:
        return _datetime(item, text, field)
    if kind is ItemType.TIME:
        if not _TIME.match(text):
            raise InvalidInput(f"{item.label}: {raw!r} is not a time (HH:MM or HH:MM:SS)", field=field)
        return text
    if kind is ItemType.BOOLEAN:
        lowered = text.lower()
        if lowered in _TRUE:
            return "true"
        if lowered in _FALSE:
            return "false"
        raise InvalidInput(f"{item.label}: {raw!r} is not yes/no", field=field)
    if kind is ItemType.CHOICE:
        codes = codelist.codes() if codelist is not None else ()
        if text not in codes:
            raise InvalidInput(f"{item.label}: {raw!r} is not one of {', '.join(codes)}", field=field)
        return text
    if item.max_length is not None and len(text) > item.max_length:
        raise InvalidInput(f"{item.label}: {len(text)} characters, at most {item.max_length} allowed", field=field)
    return text


def _check_digits(item: Item, value: str, field: str) -> None:
    digits = len(value.lstrip("+-"))
    if item.max_digits is not None and digits > item.max_digits:
        raise InvalidInput(f"{item.label}: {digits} digits, at most {item.max_digits} allowed", field=field)


def _check_fraction(item: Item, number: Decimal, field: str) -> None:
    exponent = number.as_tuple().exponent
    fraction = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if item.fraction_digits is not None and fraction > item.fraction_digits:
        raise InvalidInput(
            f"{item.label}: {fraction} decimal places, at most {item.fraction_digits} allowed", field=field
        )
    if item.max_digits is not None and len(number.as_tuple().digits) > item.max_digits:
        raise InvalidInput(f"{item.label}: more than {item.max_digits} significant digits", field=field)


def _date(item: Item, text: str, field: str) -> date:
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{item.label}: {text!r} is not a real date (YYYY-MM-DD)", field=field) from None


def _datetime(item: Item, text: str, field: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{item.label}: {text!r} is not a date and time (YYYY-MM-DDTHH:MM)", field=field) from None
    return moment.isoformat(timespec="minutes" if moment.second == 0 and not moment.microsecond else "seconds")


def parse_date(text: str, field: str, label: str = "date") -> date:
    """A calendar date typed by a user (visit dates, screening dates): ISO 8601, a real day."""
    try:
        if len(text.strip()) != 10:
            raise ValueError(text)
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{label}: {text!r} is not a real date (YYYY-MM-DD)", field=field) from None
