"""Times and durations in the shapes Vault's KV engine renders.

Times are kept as integer nanoseconds since the Unix epoch (exact, comparable,
JSON-safe) and rendered like Go's ``time.RFC3339Nano``: UTC, ``Z``, fractional
seconds with trailing zeros trimmed (``2024-01-02T03:04:05.123456789Z``).
Durations are whole seconds rendered like Go's ``time.Duration.String``
(``0s``, ``45s``, ``1m30s``, ``1h0m0s``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_SECOND = 1_000_000_000


def to_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (microsecond precision)."""
    if moment.tzinfo is None:
        raise ValueError("the clock must return an aware datetime")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _NS_PER_SECOND + delta.microseconds * 1_000


def format_time(ns: int | None) -> str:
    """Go's RFC3339Nano in UTC; ``""`` for no time (Vault's rendering of a nil timestamp)."""
    if ns is None:
        return ""
    seconds, fraction = divmod(ns, _NS_PER_SECOND)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))  # half a datetime's cost
    digits = f"{fraction:09d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def seconds_to_ns(seconds: int) -> int:
    """A duration in whole seconds as nanoseconds."""
    return seconds * _NS_PER_SECOND


def format_duration(seconds: int) -> str:
    """Go's ``time.Duration.String`` for a whole number of seconds."""
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
