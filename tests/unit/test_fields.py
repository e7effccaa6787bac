"""The one home of request-side conversions: each rule of Vault's that it copies, pinned.

Expected messages are OpenBao 2.7.2's (the same Go code as Vault's
``sdk/framework`` and ``parseutil``), captured request by request.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.durations import DURATION_OVERFLOW, INT64_MAX
from strongroom.errors import InvalidRequest
from strongroom.fields import (
    duration_ns,
    duration_seconds,
    number_text,
    parse_go_int,
    to_bool,
    to_count,
    to_duration_seconds,
    to_int,
    to_string,
    ttl_seconds,
    weak_int,
)
from tests.helpers.hostile import HOSTILE_DURATIONS

# --- parseutil.ParseDurationSecond ---------------------------------------------------


@pytest.mark.parametrize(
    "value, seconds",
    [
        (None, 0),
        ("", 0),
        (0, 0),
        ("0", 0),
        (3600, 3600),
        ("3600", 3600),
        ("+5", 5),
        ("-0", 0),
        (-1, -1),
        ("-5m", -300),
        ("1h30m", 5400),
        ("1500ms", 1),
        ("2d", 172800),
        ("-1d", -86400),
        (".5s", 0),
        ("5.s", 5),
        (9223372036, 9223372036),
        ("106751d", 106751 * 86400),
        ("2562047h47m16.854775807s", 9223372036),
    ],
)
def test_durations_vault_accepts(value, seconds):
    assert duration_seconds(value) == seconds


@pytest.mark.parametrize(
    "value, message",
    [
        # Exponents and non-finite spellings are not durations, whether sent as a number or a string;
        # a fraction needs a unit; nothing beyond Go's time.Duration (int64 nanoseconds, about 292 years).
        *HOSTILE_DURATIONS,
        (float("-inf"), 'time: invalid duration "-Inf"'),
        (1.0, 'time: missing unit in duration "1.0"'),
        ("1.5", 'time: missing unit in duration "1.5"'),
        (-9223372037, DURATION_OVERFLOW),
        ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
        ("99999999999999999999", 'time: invalid duration "99999999999999999999"'),
        ("99999999999999999999d", 'strconv.ParseInt: parsing "99999999999999999999": value out of range'),
        # Days are a whole number, and only alone.
        ("1.5d", 'strconv.ParseInt: parsing "1.5": invalid syntax'),
        ("1h2d", 'strconv.ParseInt: parsing "1h2": invalid syntax'),
        ("1d2h", 'time: unknown unit "d" in duration "1d2h"'),
        # No whitespace, no hex, Go's unit spellings only.
        (" 5", 'time: invalid duration " 5"'),
        ("5 ", 'time: unknown unit " " in duration "5 "'),
        ("0x10", 'time: unknown unit "x" in duration "0x10"'),
        ("5S", 'time: unknown unit "S" in duration "5S"'),
        ("\u0663", 'time: invalid duration "\u0663"'),  # an Arabic-Indic digit is no digit to Go
        ("\u0663d", 'strconv.ParseInt: parsing "\u0663": invalid syntax'),
        (True, "could not parse duration from input"),
        ([1], "could not parse duration from input"),
    ],
)
def test_durations_vault_refuses(value, message):
    with pytest.raises(ValueError) as info:
        duration_ns(value)
    assert str(info.value) == message


@given(st.integers())
def test_any_integer_of_seconds_is_accepted_exactly_when_a_go_duration_holds_it(seconds):
    fits = abs(seconds) * 10**9 <= INT64_MAX
    try:
        assert duration_seconds(seconds) == seconds and fits
    except ValueError:
        assert not fits


# --- framework.FieldData: TypeDurationSecond, TypeInt, TypeBool, TypeString ------------


def test_duration_field_messages():
    with pytest.raises(InvalidRequest) as info:
        to_duration_seconds("increment", "-5s", validated=True)
    assert info.value.messages == [
        "Field validation failed: error converting input for field \"increment\": cannot provide negative value '-5'"
    ]
    with pytest.raises(InvalidRequest) as info:
        to_duration_seconds("increment", 1e30)
    assert info.value.messages == [
        'error converting input for field "increment": time: unknown unit "e" in duration "1e30"'
    ]
    assert to_duration_seconds("d", "-5s", signed=True) == -5


@pytest.mark.parametrize(
    "value, number",
    [
        (None, 0),
        ("", 0),
        (True, 1),
        (5, 5),
        ("5", 5),
        ("+5", 5),
        ("-5", -5),
        ("0x10", 16),
        ("010", 8),
        ("0b11", 3),
        ("0o7", 7),
        ("1_000", 1000),
        (INT64_MAX, INT64_MAX),
        (-(2**63), -(2**63)),
    ],
)
def test_ints_vault_accepts(value, number):
    assert weak_int(value) == number


@pytest.mark.parametrize(
    "value, reason",
    [
        (1.5, "invalid syntax"),
        (1.0, "invalid syntax"),
        (1e30, "invalid syntax"),
        (float("nan"), "invalid syntax"),
        (float("inf"), "invalid syntax"),
        ("NaN", "invalid syntax"),
        ("Infinity", "invalid syntax"),
        ("1e30", "invalid syntax"),
        (" 5", "invalid syntax"),
        ("5 ", "invalid syntax"),
        ("08", "invalid syntax"),
        ("1__0", "invalid syntax"),
        ("1_", "invalid syntax"),
        (2**63, "value out of range"),
        (-(2**63) - 1, "value out of range"),
        ("99999999999999999999", "value out of range"),
    ],
)
def test_ints_vault_refuses(value, reason):
    with pytest.raises(InvalidRequest) as info:
        to_int("num_uses", value, validated=True)
    assert info.value.messages == [
        'Field validation failed: error converting input for field "num_uses": '
        f"'' cannot parse value as 'int': strconv.ParseInt: {reason}"
    ]


def test_parse_go_int_is_strconv_parseint_base_0():
    assert parse_go_int("-0x_1F") == -31
    for text in ("", "+", "0x", "1.0", "٣"):
        with pytest.raises(ValueError, match="invalid syntax"):
            parse_go_int(text)


def test_counts_are_never_negative_and_bounded():
    assert to_count("version", "3") == 3
    with pytest.raises(InvalidRequest, match="^version must not be negative$"):
        to_count("version", -1)
    with pytest.raises(InvalidRequest, match="^max_versions must not be greater than 4294967295$"):
        to_count("max_versions", 2**32, maximum=2**32 - 1)


@pytest.mark.parametrize(
    "value, result",
    [
        (True, True),
        (1, True),
        ("t", True),
        ("TRUE", True),
        ("True", True),
        (False, False),
        (0, False),
        ("0", False),
        ("F", False),
        ("", False),
        (None, False),
    ],
)
def test_bools_go_parsebool_reads(value, result):
    assert to_bool("b", value) is result


@pytest.mark.parametrize("value", [2, -1, 1.0, 0.0, float("nan"), "yes", " true", "TrUe"])
def test_bools_go_parsebool_refuses(value):
    with pytest.raises(InvalidRequest) as info:
        to_bool("renewable", value, validated=True)
    assert info.value.messages == [
        'Field validation failed: error converting input for field "renewable": '
        "'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax"
    ]


def test_strings_are_weakly_decoded():
    assert [to_string("s", v) for v in ("x", 5, True, None)] == ["x", "5", "1", ""]
    with pytest.raises(InvalidRequest, match="unconvertible type '\\[\\]interface {}'"):
        to_string("s", [1])


def test_number_text_is_go_json_number_spelling():
    assert [number_text(v) for v in (1e30, 1.5, 1.0, 12, 1e-7)] == ["1e30", "1.5", "1.0", "12", "1e-07"]


# --- TTLs Vault parses itself (token create, mount config and tune) -----------------------


@pytest.mark.parametrize("value, seconds", [("1h", 3600), (60, 60), ("60", 60), (True, 1), ("", 0), (None, 0)])
def test_ttl_seconds(value, seconds):
    assert ttl_seconds(value, "ttl") == seconds


def test_ttl_seconds_messages():
    for value, message in (
        (1e30, 'time: unknown unit "e" in duration "1e30"'),
        ("-1s", "ttl must be positive"),
        (-1, "ttl must be positive"),
        ("NaN", 'time: invalid duration "NaN"'),
        (9223372037, DURATION_OVERFLOW),
        (1.5, 'time: missing unit in duration "1.5"'),
        ("system", 'time: invalid duration "system"'),
    ):
        with pytest.raises(InvalidRequest) as info:
            ttl_seconds(value, "ttl")
        assert info.value.messages == [message], value
    assert ttl_seconds("system", "default_lease_ttl", system=True) == 0
    with pytest.raises(InvalidRequest) as info:
        ttl_seconds({}, "ttl")
    assert info.value.messages == [
        'Field validation failed: error converting input for field "ttl": '
        "'' expected type 'string', got unconvertible type 'map[string]interface {}'"
    ]


def test_thousands_of_digits_are_out_of_range_not_a_crash():
    """Python refuses int() of more than 4300 digits; Go says "out of range"."""
    digits = "9" * 5000
    with pytest.raises(ValueError, match="^time: invalid duration"):
        duration_ns(digits)
    with pytest.raises(ValueError, match="^time: invalid duration"):
        duration_ns(digits + "s")
    with pytest.raises(ValueError, match="value out of range$"):
        duration_ns(digits + "d")
    for text in (digits, "-" + digits, "0x" + "f" * 5000):
        with pytest.raises(ValueError, match="value out of range$"):
            weak_int(text)


# --- the token store's fields are the same conversions -------------------------------


def test_token_string_fields_decode_weakly_as_vault():
    # The token store's old TypeString refused booleans; Vault's WeakDecode makes true "1".
    from strongroom.fields import string_field

    assert string_field({"display_name": True}, "display_name") == "1"
    assert string_field({"display_name": 5}, "display_name") == "5"
    with pytest.raises(InvalidRequest, match="expected type 'string'"):
        string_field({"display_name": {"a": 1}}, "display_name")
