"""Request parameters coerced the way Vault's ``sdk/framework`` field types do.

Vault decodes JSON numbers as ``json.Number`` and converts each field
"weakly" (``"5"`` is an int, ``1`` is a bool, ``"1,2"`` is an int slice), and
reports a bad value as ``error converting input for field "<name>": ...``,
sometimes behind ``Field validation failed:``.  These helpers reproduce those
conversions and messages so clients see what they would see from Vault.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from strongroom.errors import InvalidRequest

_PARSE_INT = "cannot parse value as 'int': strconv.ParseInt: invalid syntax"
_PARSE_BOOL = "cannot parse value as 'bool': strconv.ParseBool: invalid syntax"
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False", ""}

# Go's time.ParseDuration units, in nanoseconds, plus parseutil's whole days.
_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d*\.?\d*)([^\d.]*)")
# Go's time.Duration is an int64 of nanoseconds (about 292 years).
_MAX_DURATION_NS = 2**63 - 1


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


def field_error(name: str, detail: str, *, validated: bool = False) -> InvalidRequest:
    """Vault's message for a field that failed conversion."""
    prefix = "Field validation failed: " if validated else ""
    return InvalidRequest(f'{prefix}error converting input for field "{name}": {detail}')


def weak_int(value: Any, where: str = "''") -> int:
    """mapstructure's WeakDecode into an int; raises ValueError with its message."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        # A JSON number with a fraction or exponent fails json.Number.Int64 in Go.
        raise ValueError(f"{where} {_PARSE_INT}")
    if isinstance(value, str):
        if value == "":
            return 0
        try:
            return int(value, 0)
        except ValueError:
            raise ValueError(f"{where} {_PARSE_INT}") from None
    raise ValueError(f"{where} expected type 'int', got unconvertible type '{go_type(value)}'")


def to_int(name: str, value: Any, *, validated: bool = False) -> int:
    """A ``TypeInt`` field."""
    try:
        return weak_int(value)
    except ValueError as exc:
        raise field_error(name, str(exc), validated=validated) from None


def to_bool(name: str, value: Any, *, validated: bool = False) -> bool:
    """A ``TypeBool`` field."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise field_error(name, f"'' {_PARSE_BOOL}", validated=validated)
    raise field_error(name, f"'' expected type 'bool', got unconvertible type '{go_type(value)}'",
                      validated=validated)


def to_map(name: str, value: Any, *, validated: bool = False) -> dict | None:
    """A ``TypeMap`` field: a JSON object, or None for JSON null."""
    if value is None or isinstance(value, dict):
        return value
    raise field_error(name, f"'' expected type 'map[string]interface {{}}', got unconvertible type "
                            f"'{go_type(value)}'", validated=validated)


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
            raise field_error(name, f"decoding failed due to the following error(s):\n\n{exc}",
                              validated=True) from None
    return result


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` (plus parseutil's plain seconds and ``<n>d``), in nanoseconds.

    Raises ValueError with Go's message."""
    if re.fullmatch(r"[-+]?\d+", text):
        return _checked(int(text) * _UNITS["s"], text)
    if re.fullmatch(r"[-+]?\d+d", text):
        return _checked(int(text[:-1]) * 24 * _UNITS["h"], text)
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
        number, unit = match.group(1), match.group(2)
        if not number or number == ".":
            raise ValueError(f'time: invalid duration "{text}"')
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += Decimal(number) * _UNITS[unit]
        position = match.end()
    return _checked(sign * int(total), text)


def _checked(ns: int, text: str) -> int:
    if abs(ns) > _MAX_DURATION_NS:
        raise ValueError(f'time: invalid duration "{text}"')
    return ns


def _whole_seconds(ns: int) -> int:
    """Nanoseconds to seconds, truncated toward zero like Go's ``int(d.Seconds())``."""
    seconds = abs(ns) // _UNITS["s"]
    return -seconds if ns < 0 else seconds


def to_duration_seconds(name: str, value: Any, *, signed: bool = False, validated: bool = False) -> int:
    """A ``TypeDurationSecond`` (``signed``: ``TypeSignedDurationSecond``) field, in whole seconds."""
    if value is None or value == "":
        return 0
    try:
        if isinstance(value, bool):
            raise ValueError("could not parse duration from input")
        if isinstance(value, float):
            # Vault sees the JSON number's text: "1.5" has no unit.
            raise ValueError(f'time: missing unit in duration "{value!r}"')
        if isinstance(value, int):
            seconds = _whole_seconds(_checked(value * _UNITS["s"], str(value)))
        elif isinstance(value, str):
            seconds = _whole_seconds(parse_go_duration(value))
        else:
            raise ValueError("could not parse duration from input")
    except ValueError as exc:
        raise field_error(name, str(exc), validated=validated) from None
    if seconds < 0 and not signed:
        raise field_error(name, f"cannot provide negative value '{seconds}'", validated=validated)
    return seconds


def lease_seconds(value: Any) -> int | None:
    """A secret's ``ttl``/``lease`` value as seconds (parseutil.ParseDurationSecond), None if unparsable."""
    if value is None:
        return 0
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return 0 if value == "" else _whole_seconds(parse_go_duration(value))
    except ValueError:
        return None
    return None


def weak_string(value: Any) -> str:
    """mapstructure's WeakDecode of a JSON scalar into a string; ValueError for objects and arrays."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    raise ValueError(f"'' expected type 'string', got unconvertible type '{go_type(value)}'")


def unknown_fields_warning(data: dict, known: set[str]) -> list[str]:
    """Vault's warning for body parameters an endpoint does not define."""
    unknown = sorted(k for k in data if k not in known)
    if not unknown:
        return []
    return [f"Endpoint ignored these unrecognized parameters: [{' '.join(unknown)}]"]
