"""Times in the one shape Vault renders them: Go's ``time.RFC3339Nano`` in UTC.

https://pkg.go.dev/time#pkg-constants

Vault marshals every ``time.Time`` in its JSON (KV ``created_time``, a token's
``expire_time``, an audit entry's ``time``, a key's ``install_time``) as
``2006-01-02T15:04:05.999999999Z07:00``: UTC with ``Z``, the fraction of a
second with its trailing zeros trimmed and left out when it is zero
(``2024-01-02T03:04:05Z``, ``2024-01-02T03:04:05.12Z``).  Times are held as
integer nanoseconds since the Unix epoch (exact, comparable, JSON-safe); the
helpers take the shapes Python code has at hand (an aware or naive-UTC
``datetime``, a unix timestamp) and render through the same function.  Pure
functions at the bottom layer: no imports from the package.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NS_PER_SECOND = 1_000_000_000


def to_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (microsecond precision)."""
    if moment.tzinfo is None:
        raise ValueError("the clock must return an aware datetime")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1_000


def seconds_to_ns(seconds: int) -> int:
    """A duration in whole seconds as nanoseconds."""
    return seconds * NS_PER_SECOND


@functools.lru_cache(maxsize=4096)
def _utc_seconds(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of a unix second, memoised: KV metadata renders the same
    version times on every read."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))  # half a datetime's cost


def rfc3339_ns(ns: int | None) -> str:
    """Go's RFC3339Nano in UTC of nanoseconds since the epoch; ``""`` for no time
    (Vault's rendering of a nil timestamp in KV metadata)."""
    if ns is None:
        return ""
    seconds, fraction = divmod(ns, NS_PER_SECOND)
    text = _utc_seconds(seconds)
    digits = f"{fraction:09d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def rfc3339(moment: datetime) -> str:
    """Go's RFC3339Nano of a datetime, converted to UTC (a naive one is taken as UTC)."""
    return rfc3339_ns(to_ns(moment if moment.tzinfo else moment.replace(tzinfo=UTC)))


def rfc3339_timestamp(timestamp: float) -> str:
    """Go's RFC3339Nano of a unix time, to the microsecond a ``datetime`` resolves."""
    return rfc3339(datetime.fromtimestamp(timestamp, tz=UTC))


def now_rfc3339() -> str:
    """The current time in Go's RFC3339Nano (UTC)."""
    return rfc3339(datetime.now(UTC))
