"""Request parameters read the way Vault's ``framework.FieldData`` reads them.

https://github.com/hashicorp/vault/blob/main/sdk/framework/field_data.go

Each ``*_field`` function takes the request's ``data`` and one field name and
returns the field as the type Vault's schema gives it, weakly converted as Vault
converts it (``"true"`` and ``1`` are booleans, ``"3"`` is an integer);
``parse_ttl`` does the same for one duration value (``"1h"`` is 3600 seconds).
An absent field is the type's zero value or the given default; a value that
does not convert raises ``InvalidRequest`` naming the field, in Vault's words
where clients match on them.  Pure functions: no state, no I/O.
"""

from __future__ import annotations

import math

from strongroom.config import parse_duration
from strongroom.errors import InvalidRequest


def parse_ttl(value, name: str = "ttl") -> int:
    """Whole seconds in a Vault duration (``"1h"``, ``"30m"``, ``"10s"``, ``3600``,
    ``"3600"``); None and ``""`` are 0.  Negative values raise ``InvalidRequest``
    in Vault's words ("ttl must be positive"), garbage names the field."""
    if value is None:
        return 0
    negative = (isinstance(value, str) and value.strip().startswith("-")) or (
        isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0)
    if negative:
        raise InvalidRequest(f"{name} must be positive")
    try:
        return int(parse_duration(value))
    except ValueError as exc:
        raise InvalidRequest(f'invalid value for "{name}": {exc}') from None


def string_field(data: dict, name: str) -> str:
    """Vault's ``TypeString``: scalars as text, "" when absent; no maps, lists or booleans."""
    value = data.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise InvalidRequest(f'invalid value for "{name}": expected a string')
    return str(value)


def bool_field(data: dict, name: str, default: bool) -> bool:
    """Vault's ``TypeBool``: a boolean, a number (non-zero is true) or Go's
    ``strconv.ParseBool`` spellings; ``default`` when absent or ""."""
    value = data.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "t", "true"):
            return True
        if lowered in ("0", "f", "false"):
            return False
    raise InvalidRequest(f'invalid value for "{name}": expected a boolean')


def int_field(data: dict, name: str) -> int:
    """Vault's ``TypeInt``: an integer, a whole float or a decimal string; 0 when absent or ""."""
    value = data.get(name)
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise InvalidRequest(f'invalid value for "{name}": expected an integer')
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidRequest(f'invalid value for "{name}": expected an integer')


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
            if isinstance(item, bool):
                out[str(key)] = "1" if item else "0"
            elif isinstance(item, float) and item == int(item):
                out[str(key)] = str(int(item))
            else:
                out[str(key)] = "" if item is None else str(item)
        return out
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        out = {}
        for position, pair in enumerate(value):
            key, sep, item = pair.partition("=")
            if not sep:
                raise InvalidRequest(f'Field validation failed: error converting input for field "{name}": '
                                     f'invalid key pair at index {position} in field "{name}"')
            out[key] = item
        return out
    raise InvalidRequest(f'invalid value for "{name}": expected key/value pairs')
