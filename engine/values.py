"""How a stored value compares with a rule's literal (RULES.md, "Properties").

A positive comparison with an unknown value, or a value of the wrong kind, is false;
every negative operator is the negation of its positive twin.
"""

from __future__ import annotations

import json
import math
import sys
import unicodedata
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal
from functools import lru_cache
from typing import Any

from grammar.ast import CompareOp, DateValue

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def fold(text: str) -> str:
    """Text as rules compare it: Unicode's canonical caseless form, so that "STRASSE" matches
    "Straße", and "Zürich" with a combining umlaut (as some systems send it) the one typed."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).casefold())


def decode_json(text: str) -> Any:
    """A JSON text as the store writes them, decoded as json.loads does (plain text and
    integers without it: they are most values, and it costs several times as much)."""
    first = text[0]
    if first == '"' and "\\" not in text:
        return text[1:-1]
    if first in "-0123456789" and text.lstrip("-").isdigit():
        return int(text)
    return json.loads(text)


def is_number(value: Any) -> bool:
    """True for JSON numbers (not booleans, not NaN)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


# Enough digits for any sum of doubles to be exact (they span about 650 decimal places), so
# that the result is rounded once, to a float; digits unused cost nothing.
_SUMS = Context(prec=800)


def total(numbers: Sequence[int | float]) -> int | float:
    """The sum of numbers as they are written: 10.1 + 20.2 is 30.3, where adding the binary
    floats gives 30.299999999999997 (and `total amount >= 30.3` would not hold)."""
    if all(type(x) is int for x in numbers):
        return sum(numbers)
    return float(_exact_sum(numbers))


def average(numbers: Sequence[int | float]) -> float | None:
    """The mean of numbers as they are written, rounded once; None for none."""
    if not numbers:
        return None
    return float(_SUMS.divide(_exact_sum(numbers), len(numbers)))


def sum_compares(numbers: Sequence[int | float], mean: bool, op: CompareOp, literal: Any) -> bool:
    """compare(total(numbers) or average(numbers), op, literal), adding up exactly only when
    the binary sum lies too near the literal to tell (it costs a tenth as much)."""
    if numbers and is_number(literal) and not all(type(x) is int for x in numbers):
        # Each number as written is within half an ulp of its float, and math.fsum is rounded
        # once: the two sums differ by less than eps * sum(|x|); the rounding of either, once
        # more.
        try:
            approx = math.fsum(numbers)
            margin = 2 * sys.float_info.epsilon * math.fsum(map(abs, numbers))
        except OverflowError:  # beyond a double on the way (1e308 + 1e308): added up exactly
            approx, margin = 0.0, math.inf
        if mean:
            approx, margin = approx / len(numbers), margin / len(numbers)
        if abs(approx - literal) > margin:
            return compare(approx, op, literal)
    return compare(average(numbers) if mean else total(numbers), op, literal)


def _exact_sum(numbers: Sequence[int | float]) -> Decimal:
    found = Decimal(0)
    for x in numbers:
        # repr: the shortest text that reads back as the float, as the producer sent it
        found = _SUMS.add(found, Decimal(x) if type(x) is int else Decimal(repr(x)))
    return found


@lru_cache(maxsize=65_536)
def parse_instant(text: str) -> int | None:
    """An ISO-8601 date or date-time as UTC milliseconds; None if it is not one.

    A date-time without an offset is taken as UTC; a bare date is its midnight UTC.
    """
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            moment = datetime(d.year, d.month, d.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        return None
    return (moment - EPOCH) // MILLISECOND


def instant_of(value: Any) -> int | None:
    """A stored value read as an instant (ISO-8601 text), or None."""
    return parse_instant(value) if isinstance(value, str) else None


def as_stored(number: Any) -> Any:
    """A number as SQLite holds it, so that every evaluator compares alike: an integer beyond
    64 bits is a double (the API refuses them; an older log may hold some)."""
    if isinstance(number, int) and not -(2**63) <= number < 2**63:
        return float(number)
    return number


def _same_kind(value: Any, literal: Any) -> tuple[Any, Any] | None:
    """Both sides as comparable Python values, or None when the kinds differ."""
    if isinstance(literal, DateValue):
        moment = instant_of(value)
        return None if moment is None else (moment, literal.ms)
    if isinstance(literal, bool):
        return (value, literal) if isinstance(value, bool) else None
    if is_number(literal):
        return (as_stored(value), as_stored(literal)) if is_number(value) else None
    if isinstance(literal, str):
        return (fold(value), fold(literal)) if isinstance(value, str) else None
    return None


def compare(value: Any, op: CompareOp, literal: Any) -> bool:
    """`value <op> literal` with RULES.md's semantics; `!=` is `not =`."""
    if op is CompareOp.NE:
        return not compare(value, CompareOp.EQ, literal)
    if value is None:
        return False
    pair = _same_kind(value, literal)
    if pair is None:
        return False
    a, b = pair
    if op is CompareOp.EQ:
        return a == b
    if isinstance(a, str | bool):
        return False  # ordering is for numbers and dates only
    if op is CompareOp.GT:
        return a > b
    if op is CompareOp.GE:
        return a >= b
    if op is CompareOp.LT:
        return a < b
    return a <= b
