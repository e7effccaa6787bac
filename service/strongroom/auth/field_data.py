"""Old home of the token store's request conversions, kept importable while
``auth/path_token.py`` switches: each ``*_field(data, name)`` is one call of
``strongroom.fields``, the one home of Vault's field conversions
(``fields.to_X(name, data.get(name))``).  Import from there; this module goes
once nothing imports it.

https://github.com/hashicorp/vault/blob/main/sdk/framework/field_data.go
"""

from __future__ import annotations

from typing import Any

from strongroom.fields import to_bool, to_int, to_kv_pairs, to_string, to_string_slice
from strongroom.fields import ttl_seconds as parse_ttl

__all__ = ["bool_field", "int_field", "kv_pairs_field", "parse_ttl", "string_field", "string_list_field"]


def string_field(data: dict[str, Any], name: str) -> str:
    """``fields.to_string``: Vault's weak ``TypeString`` ("" when absent, ``true`` is ``"1"``)."""
    return to_string(name, data.get(name), validated=True)


def bool_field(data: dict[str, Any], name: str, default: bool) -> bool:
    """``fields.to_bool``, with ``default`` when absent or ""."""
    value = data.get(name)
    return default if value is None or value == "" else to_bool(name, value, validated=True)


def int_field(data: dict[str, Any], name: str) -> int:
    """``fields.to_int``: 0 when absent."""
    return to_int(name, data.get(name), validated=True)


def string_list_field(data: dict[str, Any], name: str) -> list[str]:
    """``fields.to_string_slice``."""
    return to_string_slice(name, data.get(name))


def kv_pairs_field(data: dict[str, Any], name: str) -> dict[str, str] | None:
    """``fields.to_kv_pairs``."""
    return to_kv_pairs(name, data.get(name))
