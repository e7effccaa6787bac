"""Request parameters read the way Vault's ``framework.FieldData`` reads them.

https://github.com/hashicorp/vault/blob/main/sdk/framework/field_data.go

Each ``*_field`` function takes the request's ``data`` and one field name and
returns the field as the type Vault's schema gives it, weakly converted as Vault
converts it (``"true"`` and ``1`` are booleans, ``"3"`` is an integer);
``parse_ttl`` does the same for one duration value (``"1h"`` is 3600 seconds).
An absent field is the type's zero value or the given default; a value that
does not convert raises ``InvalidRequest`` naming the field, in Vault's words
where clients match on them.  The numeric and boolean conversions are
``strongroom.fields``' (shared with the engines and the system backend); the
shapes only the token store uses are here.  Pure functions: no state, no I/O.
"""

from __future__ import annotations

from strongroom.errors import InvalidRequest
from strongroom.fields import to_bool, to_int, ttl_seconds, weak_string


def parse_ttl(value, name: str = "ttl") -> int:
    """Whole seconds in a Vault duration (``"1h"``, ``"30m"``, ``"10s"``, ``3600``,
    ``"3600"``, ``"7d"``) as Vault's token store parses ``ttl``, ``period`` and
    ``explicit_max_ttl``: None and ``""`` are 0, a fraction needs a unit, nothing
    beyond Go's int64 nanoseconds; negative values raise ``InvalidRequest`` in
    Vault's words ("ttl must be positive"), garbage with ``parseutil``'s message."""
    return ttl_seconds(value, name)


def string_field(data: dict, name: str) -> str:
    """Vault's ``TypeString``: scalars as text, "" when absent; no maps, lists or booleans."""
    value = data.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise InvalidRequest(f'invalid value for "{name}": expected a string')
    return str(value)


def bool_field(data: dict, name: str, default: bool) -> bool:
    """Vault's ``TypeBool``: a boolean, or what Go's ``strconv.ParseBool`` reads in a
    string or a JSON number (``1``/``0``, ``"t"``, ``"False"``); ``default`` when absent or ""."""
    value = data.get(name)
    if value is None or value == "":
        return default
    return to_bool(name, value, validated=True)


def int_field(data: dict, name: str) -> int:
    """Vault's ``TypeInt``: a Go int (int64) from an integer, a boolean or a
    ``strconv.ParseInt`` string; no fractions, exponents, NaN or Infinity; 0 when absent."""
    return to_int(name, data.get(name), validated=True)


def string_list_field(data: dict, name: str) -> list[str]:
    """Vault's ``TypeStringSlice``: a list, or one string taken as a single element."""
    value = data.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidRequest(f'invalid value for "{name}": expected a list of strings')


def kv_pairs_field(data: dict, name: str) -> dict[str, str] | None:
    """Vault's ``TypeKVPairs``: an object (values weakly turned into strings), or one
    ``key=value`` string or a list of them, split at the first ``=`` and kept
    verbatim; None when absent."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                raise InvalidRequest(f'invalid value for "{name}": values must be strings')
            out[str(key)] = weak_string(item)
        return out
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        out = {}
        for position, pair in enumerate(value):
            key, sep, item = pair.partition("=")
            if not sep:
                raise InvalidRequest(
                    f'Field validation failed: error converting input for field "{name}": '
                    f'invalid key pair at index {position} in field "{name}"'
                )
            out[key] = item
        return out
    raise InvalidRequest(f'invalid value for "{name}": expected key/value pairs')
