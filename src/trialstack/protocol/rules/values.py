"""Runtime value semantics shared by the compiler, the reference interpreter and the functions.

Numbers are int or Decimal; arithmetic never uses binary floats. Anything arithmetic cannot answer
(division by zero, overflow, 0 ** -1, a negative number to a fractional power) is *unknown* (None),
like a missing value: a check over it raises no query rather than crashing the save.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow

# Fixed context for / and ** so a rule gives the same answer on every machine and thread, whatever
# the caller did to decimal.getcontext(). Emax keeps results far from sizes that would cost time.
CONTEXT = Context(prec=28, Emax=9999, Emin=-9999, traps=[InvalidOperation, DivisionByZero, Overflow])


def number_in(value: object) -> object:
    """Read a NUMBER from the caller: a float becomes the Decimal of its repr; NaN and infinities are missing."""
    if value.__class__ is float:
        return Decimal(repr(value)) if math.isfinite(value) else None
    return value


def as_date(value: date) -> date:
    """The calendar date of a DATE or DATETIME (a datetime's date in its own UTC offset)."""
    return value.date() if isinstance(value, datetime) else value


def add(a: object, b: object) -> object:
    try:
        return a + b  # type: ignore[operator]
    except ArithmeticError:
        return None


def sub(a: object, b: object) -> object:
    try:
        return a - b  # type: ignore[operator]
    except ArithmeticError:
        return None


def mul(a: object, b: object) -> object:
    try:
        return a * b  # type: ignore[operator]
    except ArithmeticError:
        return None


def div(a: object, b: object) -> object:
    """a / b as a Decimal; unknown when b is zero."""
    try:
        return CONTEXT.divide(a, b)  # type: ignore[arg-type]
    except ArithmeticError:
        return None


def power(a: object, b: object) -> object:
    """a ** b as a Decimal; unknown when undefined or too large."""
    try:
        result = CONTEXT.power(a, b)  # type: ignore[arg-type]
    except ArithmeticError:
        return None
    return result if result.is_finite() else None  # 0 ** -1 is Infinity without a trap


ARITH = {"+": add, "-": sub, "*": mul, "/": div, "**": power}
