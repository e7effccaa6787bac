"""Request fields converted the way Vault converts them: one home for every layer.

https://github.com/hashicorp/vault/blob/main/sdk/framework/field_data.go
https://github.com/hashicorp/go-secure-stdlib/blob/main/parseutil/parseutil.go

Vault decodes a JSON body with ``UseNumber``, so a number reaches a field as
its text (``json.Number``), and converts each field "weakly" (mapstructure's
``WeakDecode``: ``"5"`` is an int, ``true`` is the int 1, ``1`` is a bool).
Durations go through ``parseutil.ParseDurationSecond``: a plain integer is
seconds, ``<n>d`` is days, anything else is Go's ``time.ParseDuration``; the
result is a Go ``time.Duration``, an int64 of nanoseconds (about 292 years),
and integers are Go ints (int64).  A value outside those types, a fraction
where an integer is wanted, and NaN or Infinity (which no JSON number spells,
but a string can, and other code paths may hand over as a float) are refused
with Vault's words, as ``InvalidRequest`` for a field or ``ValueError`` for
the bare parsers.  Pure functions, importing nothing above ``errors``: the
engines, the auth methods and the core all convert through here.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from strongroom.durations import INT64_MAX, INT64_MIN, bounded_int, parse_duration_second, whole_seconds
from strongroom.errors import InvalidRequest

UINT32_MAX = 2**32 - 1

PARSE_INT = "cannot parse value as 'int': strconv.ParseInt: invalid syntax"
PARSE_INT_RANGE = "cannot parse value as 'int': strconv.ParseInt: value out of range"
PARSE_BOOL = "cannot parse value as 'bool': strconv.ParseBool: invalid syntax"
NOT_A_DURATION = "could not parse duration from input"

# Go's strconv.ParseBool, which Vault applies to a string or a JSON number's text.
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}

# strconv.ParseInt with base 0: a sign, then decimal, 0x / 0o / 0 (octal) / 0b, with Go's digit separators.
_GO_INT = re.compile(r"([+-]?)(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|0[0-7_]*|[1-9][0-9_]*)")


def go_type(value: Any) -> str:
    """The Go type name Vault's decoder reports for a JSON value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "json.Number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "interface {}"


def number_text(value: int | float) -> str:
    """The text of a JSON number as Vault's ``json.Number`` holds it (``1e30``, ``1.5``).

    Python forgets the spelling; this is the shortest one that reads back the
    same, with Go's exponent form.  A non-finite float (only reachable from
    code, never from JSON) shows as ``NaN`` / ``+Inf`` / ``-Inf`` and converts to nothing."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value).replace("e+", "e")


def field_error(name: str, detail: str, *, validated: bool = False) -> InvalidRequest:
    """Vault's message for a field that failed conversion (``Field validation failed:``
    in front when the endpoint validates its fields strictly)."""
    prefix = "Field validation failed: " if validated else ""
    return InvalidRequest(f'{prefix}error converting input for field "{name}": {detail}')


# -- integers ------------------------------------------------------------------


def parse_go_int(text: str) -> int:
    """Go's ``strconv.ParseInt(text, 0, 64)``; ValueError ``invalid syntax`` or ``value out of range``."""
    match = _GO_INT.fullmatch(text)
    if match is None:
        raise ValueError("invalid syntax")
    sign, body = match.groups()
    if body.endswith("_") or "__" in body:
        raise ValueError("invalid syntax")  # Go's underscoreOK: one underscore between digits
    if body[0] == "0" and len(body) > 1 and body[1] not in "xXbBoO":
        number = bounded_int(body.replace("_", ""), 8)
    elif body[:2].lower() in ("0x", "0b", "0o"):
        digits = body[2:].replace("_", "")
        if not digits:
            raise ValueError("invalid syntax")
        number = bounded_int(digits, {"x": 16, "b": 2, "o": 8}[body[1].lower()])
    else:
        number = bounded_int(body.replace("_", ""))
    number = -number if sign == "-" else number
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError("value out of range")
    return number


def weak_int(value: Any, where: str = "''") -> int:
    """mapstructure's ``WeakDecode`` of a JSON value into a Go int (int64);
    ValueError with its message (``where`` names the element, ``''`` the field)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        # A JSON number with a fraction or exponent fails json.Number.Int64.
        raise ValueError(f"{where} {PARSE_INT}")
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"{where} {PARSE_INT_RANGE}")
        return value
    if isinstance(value, str):
        if value == "":
            return 0
        try:
            return parse_go_int(value)
        except ValueError as exc:
            message = PARSE_INT_RANGE if str(exc) == "value out of range" else PARSE_INT
            raise ValueError(f"{where} {message}") from None
    raise ValueError(f"{where} expected type 'int', got unconvertible type '{go_type(value)}'")


def to_int(name: str, value: Any, *, validated: bool = False) -> int:
    """A ``TypeInt`` field."""
    try:
        return weak_int(value)
    except ValueError as exc:
        raise field_error(name, str(exc), validated=validated) from None


def to_count(name: str, value: Any, *, maximum: int = INT64_MAX, validated: bool = False) -> int:
    """A ``TypeInt`` field that counts or numbers something (``version``,
    ``max_versions``): never negative, at most ``maximum``.  Vault reads a
    negative version as "the latest" and wraps ``max_versions`` into a uint32
    (4294967296 becomes 0, the default); both are refused here."""
    number = to_int(name, value, validated=validated)
    if number < 0:
        raise InvalidRequest(f"{name} must not be negative")
    if number > maximum:
        raise InvalidRequest(f"{name} must not be greater than {maximum}")
    return number


def to_comma_int_slice(name: str, value: Any) -> list[int]:
    """A ``TypeCommaIntSlice`` field: ``[1, "2"]``, ``"1,2"`` or ``3``."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items: list = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    result = []
    for position, item in enumerate(items):
        try:
            result.append(weak_int(item, f"'[{position}]'"))
        except ValueError as exc:
            raise field_error(
                name, f"decoding failed due to the following error(s):\n\n{exc}", validated=True
            ) from None
    return result


# -- booleans, strings, maps -----------------------------------------------------


def parse_go_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool`` (``1``, ``t``, ``TRUE``, ``false``, ...); ValueError ``invalid syntax``."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("invalid syntax")


def to_bool(name: str, value: Any, *, validated: bool = False) -> bool:
    """A ``TypeBool`` field: a boolean, or a string or JSON number that Go's
    ``strconv.ParseBool`` reads (so ``1`` and ``0`` but not ``2`` or ``1.0``); "" is false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) or isinstance(value, str):
        text = number_text(value) if not isinstance(value, str) else value
        if text == "":
            return False
        try:
            return parse_go_bool(text)
        except ValueError:
            raise field_error(name, f"'' {PARSE_BOOL}", validated=validated) from None
    raise field_error(name, f"'' expected type 'bool', got unconvertible type '{go_type(value)}'", validated=validated)


def weak_string(value: Any) -> str:
    """mapstructure's ``WeakDecode`` of a JSON scalar into a string (a number as
    its text, a boolean as ``"1"``/``"0"``); ValueError for objects and arrays."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return number_text(value)
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    raise ValueError(f"'' expected type 'string', got unconvertible type '{go_type(value)}'")


def to_string(name: str, value: Any, *, validated: bool = False) -> str:
    """A ``TypeString`` field."""
    try:
        return weak_string(value)
    except ValueError as exc:
        raise field_error(name, str(exc), validated=validated) from None


def to_map(name: str, value: Any, *, validated: bool = False) -> dict | None:
    """A ``TypeMap`` field: a JSON object, or None for JSON null."""
    if value is None or isinstance(value, dict):
        return value
    raise field_error(
        name,
        f"'' expected type 'map[string]interface {{}}', got unconvertible type '{go_type(value)}'",
        validated=validated,
    )


def to_string_slice(name: str, value: Any) -> list[str]:
    """A list of strings (token ``policies``): a list, or one string taken as a
    single element; [] when absent or ""."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidRequest(f'invalid value for "{name}": expected a list of strings')


def to_kv_pairs(name: str, value: Any) -> dict[str, str] | None:
    """Vault's ``TypeKVPairs``: an object (values weakly turned into strings), or one
    ``key=value`` string or a list of them, split at the first ``=`` and kept
    verbatim; None when absent."""
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
                raise field_error(name, f'invalid key pair at index {position} in field "{name}"', validated=True)
            out[key] = item
        return out
    raise InvalidRequest(f'invalid value for "{name}": expected key/value pairs')


def unknown_fields_warning(data: dict, known: set[str]) -> list[str]:
    """Vault's warning for body parameters an endpoint does not define."""
    unknown = sorted(k for k in data if k not in known)
    if not unknown:
        return []
    return [f"Endpoint ignored these unrecognized parameters: [{' '.join(unknown)}]"]


# -- durations -------------------------------------------------------------------


def duration_ns(value: Any) -> int:
    """``parseutil.ParseDurationSecond``: nanoseconds, negative allowed; ValueError
    with Vault's message.  None and "" are 0; an int or a numeric string is
    seconds, ``<n>d`` days; a float goes by its JSON text (``1.5`` has no unit)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(NOT_A_DURATION)
    if isinstance(value, (int, float)):
        value = number_text(value)
    if not isinstance(value, str):
        raise ValueError(NOT_A_DURATION)
    return parse_duration_second(value)


def duration_seconds(value: Any) -> int:
    """``parseutil.ParseDurationSecond`` in whole seconds (negative allowed); ValueError."""
    return whole_seconds(duration_ns(value))


def lease_seconds(value: Any) -> int | None:
    """A KV v1 secret's ``ttl``/``lease`` value as seconds (``parseutil.ParseDurationSecond``),
    None when it is not a duration Vault can hold (Vault then uses the mount's default)."""
    try:
        return duration_seconds(value)
    except ValueError:
        return None


def to_duration_seconds(name: str, value: Any, *, signed: bool = False, validated: bool = False) -> int:
    """A ``TypeDurationSecond`` (``signed``: ``TypeSignedDurationSecond``) field, in whole seconds."""
    if value is None or value == "":
        return 0
    try:
        seconds = duration_seconds(value)
    except ValueError as exc:
        raise field_error(name, str(exc), validated=validated) from None
    if seconds < 0 and not signed:
        raise field_error(name, f"cannot provide negative value '{seconds}'", validated=validated)
    return seconds


def ttl_seconds(value: Any, name: str = "ttl", *, system: bool = False) -> int:
    """A TTL that Vault takes as a string and parses itself (token ``ttl``, a
    mount's ``default_lease_ttl``): weakly a string, then ``ParseDurationSecond``;
    the bare parser message on failure, ``<name> must be positive`` when negative.
    ``system`` accepts Vault's ``"system"`` (0: the system default), as mount tuning does."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = number_text(value)
    else:
        try:
            text = weak_string(value)
        except ValueError as exc:
            raise field_error(name, str(exc), validated=True) from None
    if system and text == "system":
        return 0
    try:
        seconds = duration_seconds(text)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    if seconds < 0:
        raise InvalidRequest(f"{name} must be positive")
    return seconds


# --- Vault's FieldData.Get: one field of a request's data, by name ---------------------------


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
