"""Literals as written in a rule and as values: quoted text, numbers, dates and instants."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_MS = 86_400_000

_DATE = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[Tt](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<frac>\d+))?)?"
    r"(?P<zone>[Zz]|(?P<sign>[+-])(?P<oh>\d{2}):?(?P<om>\d{2}))?)?"
)
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_ESCAPE_PAIR = re.compile(r"\\(.)", re.DOTALL)
_NEEDS_ESCAPE = re.compile(r'["\\\n\r\t]')
_ESCAPED = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class LiteralError(ValueError):
    """A literal that has the right shape but no meaning (`2026-02-30`, `1e999`)."""


def unquote(token: str) -> str:
    """The text of a quoted literal; `\\"`, `\\'`, `\\\\`, `\\n`, `\\r`, `\\t` are escapes.

    Any other backslash is kept as written, so a pasted `C:\\path` means what it shows.
    """
    return _ESCAPE_PAIR.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), token[1:-1])


def quote(text: str) -> str:
    """`text` as a double-quoted literal that `unquote` reads back unchanged."""
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _ESCAPED[m.group(0)], text) + '"'


def parse_number(token: str) -> int | float:
    """An integer when written without a point or exponent, else a float; finite only."""
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    value = float(token)
    if not math.isfinite(value):
        raise LiteralError(f"{token} is too large a number")
    return value


def format_number(value: int | float) -> str:
    """Integers as digits, floats by repr (which `parse_number` reads back exactly)."""
    return str(value) if isinstance(value, int) else repr(value)


def parse_date(token: str) -> int:
    """UTC milliseconds of `2026-01-01`, `2026-01-01T09:00:00Z`, `...T09:00:00.250+02:00`.

    An instant without a zone is taken as UTC, like every time in a rule.
    """
    m = _DATE.fullmatch(token)
    if m is None:
        raise LiteralError(f"{token} is not a date; write 2026-01-01 or 2026-01-01T09:00:00Z")
    frac = m["frac"] or ""
    if len(frac) > 3:
        raise LiteralError(
            f"{token} has more than milliseconds; use at most 3 digits after the seconds"
        )
    try:
        moment = datetime(
            int(m["y"]),
            int(m["mo"]),
            int(m["d"]),
            int(m["h"] or 0),
            int(m["mi"] or 0),
            int(m["s"] or 0),
            int(frac.ljust(3, "0")) * 1000,
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise LiteralError(f"{token} is not a valid date ({exc})") from None
    if m["sign"]:
        hours, minutes = int(m["oh"]), int(m["om"])
        if hours > 23 or minutes > 59:
            raise LiteralError(f"{token} has an impossible time zone offset")
        offset = timedelta(hours=hours, minutes=minutes)
        try:
            moment = moment - offset if m["sign"] == "+" else moment + offset
        except OverflowError:
            raise LiteralError(f"{token} lies outside the years 0001-9999 in UTC") from None
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _moment(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def format_date(ms: int) -> str:
    """`2026-01-01` at midnight UTC, else `2026-01-01T09:00:00Z` (`.250` when there are ms)."""
    if ms % DAY_MS == 0:
        d = _moment(ms)
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    return iso_instant(ms, always_ms=False)


def iso_instant(ms: int, *, always_ms: bool = True) -> str:
    """`2026-01-01T09:00:00.250Z`: an instant in ISO-8601, UTC."""
    d = _moment(ms)
    text = f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
    millis = ms % 1000
    if always_ms or millis:
        text += f".{millis:03d}"
    return text + "Z"
