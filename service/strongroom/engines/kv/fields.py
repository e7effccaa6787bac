"""Old home of the KV engine's request conversions, kept importable while the
engine switches: everything here is ``strongroom.fields``' (and
``strongroom.durations``'), the one home of Vault's field conversions.
Import from there; this module goes once nothing imports it.
"""

from __future__ import annotations

from strongroom.durations import parse_go_duration
from strongroom.fields import (
    UINT32_MAX,
    field_error,
    go_type,
    lease_seconds,
    to_bool,
    to_comma_int_slice,
    to_count,
    to_duration_seconds,
    to_int,
    to_map,
    unknown_fields_warning,
    weak_int,
    weak_string,
)

__all__ = [
    "UINT32_MAX",
    "field_error",
    "go_type",
    "lease_seconds",
    "parse_go_duration",
    "to_bool",
    "to_comma_int_slice",
    "to_count",
    "to_duration_seconds",
    "to_int",
    "to_map",
    "unknown_fields_warning",
    "weak_int",
    "weak_string",
]
