"""Old home of the KV engine's time and duration rendering, kept importable while
the engine switches: times are ``strongroom.timefmt``'s (Go's RFC3339Nano) and
durations ``strongroom.durations``' (Go's ``time.Duration.String``).  Import
from there; this module goes once nothing imports it.
"""

from __future__ import annotations

from strongroom.durations import format_duration
from strongroom.timefmt import rfc3339_ns as format_time
from strongroom.timefmt import seconds_to_ns, to_ns

__all__ = ["format_duration", "format_time", "seconds_to_ns", "to_ns"]
