"""Go-style durations, parsed and rendered the way Vault does: the one home for both.

https://pkg.go.dev/time#ParseDuration
https://github.com/hashicorp/go-secure-stdlib/blob/main/parseutil/parseutil.go

Vault reads every duration, in a request field and in its server configuration
alike, with ``parseutil.ParseDurationSecond``: a plain integer is seconds,
``<n>d`` is days, anything else is Go's ``time.ParseDuration``.  The result is a
Go ``time.Duration``, an int64 of nanoseconds (about 292 years).  These parsers
take text (turning a JSON or HCL value into text is the caller's business:
``strongroom.fields`` for request fields, ``strongroom.config`` for the server
configuration) and raise ``ValueError`` with Go's words, or
``DurationOverflow`` (a ``ValueError``) when the text is a duration that no
int64 of nanoseconds holds.  Pure functions at the bottom layer: no imports
from the package.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SECOND_NS = 1_000_000_000
# The longest Go time.Duration in seconds (9223372036.854775807), the most any Vault duration can hold.
MAX_SECONDS = INT64_MAX / SECOND_NS

DURATION_OVERFLOW = "multiplication of durations resulted in overflow, one operand may be too large"

# Go's time.ParseDuration units, in nanoseconds.
UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": SECOND_NS,
    "m": 60 * SECOND_NS,
    "h": 3_600 * SECOND_NS,
}
_DAY_NS = 24 * UNITS_NS["h"]
_DURATION_PART = re.compile(r"(\d*\.?\d*)([^\d.]*)", re.ASCII)
_DECIMAL = re.compile(r"[+-]?\d+", re.ASCII)


class DurationOverflow(ValueError):
    """A well-formed duration beyond Go's int64 nanoseconds (the message is Go's)."""


def bounded_int(digits: str, base: int = 10) -> int:
    """``int(digits, base)`` for a string already known to be digits, without
    Python's 4300-digit limit getting in the way: anything that long is far
    beyond int64 whatever its sign, so it stands for a value far out of range."""
    if len(digits) > 80:
        return -(10**100) if digits.startswith("-") else 10**100
    return int(digits, base)


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration``, in nanoseconds; ValueError with Go's message
    (``time: invalid duration "..."`` also beyond the int64 range)."""
    body, sign = text, 1
    if body[:1] in ("-", "+"):
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    if body == "0":
        return 0
    if not body:
        raise ValueError(f'time: invalid duration "{text}"')
    total = Decimal(0)
    position = 0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        assert match is not None  # the pattern matches the empty string
        number, unit = match.group(1), match.group(2)
        if not number or number == ".":
            raise ValueError(f'time: invalid duration "{text}"')
        if bounded_int(number.split(".")[0] or "0") > INT64_MAX:
            raise DurationOverflow(f'time: invalid duration "{text}"')  # Go's leadingInt overflows first
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in UNITS_NS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        try:
            total += Decimal(number) * UNITS_NS[unit]
        except InvalidOperation:
            raise ValueError(f'time: invalid duration "{text}"') from None
        position = match.end()
    ns = sign * int(total)
    if not INT64_MIN <= ns <= INT64_MAX:
        raise DurationOverflow(f'time: invalid duration "{text}"')
    return ns


def _times(count: int, unit_ns: int) -> int:
    ns = count * unit_ns
    if not INT64_MIN <= ns <= INT64_MAX:
        raise DurationOverflow(DURATION_OVERFLOW)
    return ns


def parse_duration_second(text: str) -> int:
    """``parseutil.ParseDurationSecond`` of a string, in nanoseconds (negative
    allowed; "" is 0): an integer is seconds, ``<n>d`` days, else Go's
    ``time.ParseDuration``.  ValueError with Vault's message."""
    if text == "":
        return 0
    if _DECIMAL.fullmatch(text):
        seconds = bounded_int(text)
        if INT64_MIN <= seconds <= INT64_MAX:
            return _times(seconds, SECOND_NS)
    elif text.endswith("d"):
        days = text[:-1]
        if not _DECIMAL.fullmatch(days):
            raise ValueError(f'strconv.ParseInt: parsing "{days}": invalid syntax')
        if not INT64_MIN <= bounded_int(days) <= INT64_MAX:
            raise DurationOverflow(f'strconv.ParseInt: parsing "{days}": value out of range')
        return _times(bounded_int(days), _DAY_NS)
    return parse_go_duration(text)


def whole_seconds(ns: int) -> int:
    """Nanoseconds to seconds, truncated toward zero like Go's ``int(d.Seconds())``."""
    seconds = abs(ns) // SECOND_NS
    return -seconds if ns < 0 else seconds


def format_duration(seconds: int) -> str:
    """Go's ``time.Duration.String`` for a whole number of seconds (``0s``, ``45s``, ``1m30s``, ``1h0m0s``)."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def human_duration(seconds: int) -> str:
    """Vault's ``humanDuration`` (its TTL and period warnings): ``format_duration``
    with a zero tail dropped (``"1h30m"``, ``"768h"``, ``"1m"``; ``"1h0m1s"`` stays)."""
    text = format_duration(seconds)
    if text.endswith("m0s"):
        text = text[:-2]
    if text.endswith("h0m"):
        text = text[:-2]
    return text
