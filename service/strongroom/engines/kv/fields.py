"""Request parameters of the KV engine, coerced the way Vault's ``sdk/framework`` does.

The conversions themselves (int, bool, map, durations, Vault's messages) live
in ``strongroom.fields``, shared with the token store and the system backend;
this module re-exports the ones KV uses and adds what only KV needs: a KV v1
secret's ``ttl`` and the warning for unknown body parameters.
"""

from __future__ import annotations

from typing import Any

from strongroom.fields import (
    UINT32_MAX,
    duration_seconds,
    field_error,
    go_type,
    parse_go_duration,
    to_bool,
    to_comma_int_slice,
    to_count,
    to_duration_seconds,
    to_int,
    to_map,
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


def lease_seconds(value: Any) -> int | None:
    """A KV v1 secret's ``ttl``/``lease`` value as seconds (``parseutil.ParseDurationSecond``),
    None when it is not a duration Vault can hold (Vault then uses the mount's default)."""
    try:
        return duration_seconds(value)
    except ValueError:
        return None


def unknown_fields_warning(data: dict, known: set[str]) -> list[str]:
    """Vault's warning for body parameters an endpoint does not define."""
    unknown = sorted(k for k in data if k not in known)
    if not unknown:
        return []
    return [f"Endpoint ignored these unrecognized parameters: [{' '.join(unknown)}]"]
