"""Vault-style parameter coercion and time rendering used by the KV engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.durations import format_duration, parse_go_duration
from strongroom.errors import InvalidRequest
from strongroom.fields import (
    lease_seconds,
    to_bool,
    to_comma_int_slice,
    to_duration_seconds,
    to_int,
    to_map,
    unknown_fields_warning,
    weak_string,
)
from strongroom.timefmt import rfc3339_ns, to_ns


@pytest.mark.parametrize(
    "ns, text",
    [
        (None, ""),
        (0, "1970-01-01T00:00:00Z"),
        (1_704_164_645_123_456_789, "2024-01-02T03:04:05.123456789Z"),
        (1_704_164_645_123_456_000, "2024-01-02T03:04:05.123456Z"),
        (1_704_164_645_100_000_000, "2024-01-02T03:04:05.1Z"),
        (1_704_164_645_000_000_000, "2024-01-02T03:04:05Z"),
    ],
)
def test_format_time_like_go_rfc3339nano(ns, text):
    assert rfc3339_ns(ns) == text


def test_to_ns_requires_aware_datetime():
    moment = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert to_ns(moment) == 1_704_164_645_123_456_000
    assert to_ns(moment.astimezone(timezone(timedelta(hours=2)))) == 1_704_164_645_123_456_000
    with pytest.raises(ValueError):
        to_ns(datetime(2024, 1, 2))


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)))
def test_format_time_round_trips_through_fromisoformat(moment):
    text = rfc3339_ns(to_ns(moment))
    assert datetime.fromisoformat(text.replace("Z", "+00:00")) == moment


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0s"),
        (45, "45s"),
        (90, "1m30s"),
        (3600, "1h0m0s"),
        (5400, "1h30m0s"),
        (172800, "48h0m0s"),
        (-1, "-1s"),
        (-3661, "-1h1m1s"),
    ],
)
def test_format_duration_like_go(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    "text, ns",
    [
        ("0", 0),
        ("1h30m", 5_400_000_000_000),
        ("1.5h", 5_400_000_000_000),
        ("1500ms", 1_500_000_000),
        ("-5s", -5_000_000_000),
        ("+1m", 60_000_000_000),
        ("1h0m0.5s", 3_600_500_000_000),
        ("10us", 10_000),
        ("10\u00b5s", 10_000),
    ],
)
def test_parse_go_duration(text, ns):
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize(
    "text, message",
    [
        ("abc", 'time: invalid duration "abc"'),
        ("1.5", 'time: missing unit in duration "1.5"'),
        ("5x", 'time: unknown unit "x" in duration "5x"'),
        ("-", 'time: invalid duration "-"'),
        ("90", 'time: missing unit in duration "90"'),  # plain seconds are parseutil's, not Go's
        ("2d", 'time: unknown unit "d" in duration "2d"'),
    ],
)
def test_parse_go_duration_errors(text, message):
    with pytest.raises(ValueError) as info:
        parse_go_duration(text)
    assert str(info.value) == message


def test_duration_fields():
    assert to_duration_seconds("d", "1500ms") == 1
    assert to_duration_seconds("d", 30) == 30
    assert to_duration_seconds("d", None) == 0
    assert to_duration_seconds("d", "-1h", signed=True) == -3600
    with pytest.raises(InvalidRequest) as info:
        to_duration_seconds("d", 1.9)
    assert info.value.messages == ['error converting input for field "d": time: missing unit in duration "1.9"']
    with pytest.raises(InvalidRequest):
        to_duration_seconds("d", True)
    # Go durations are int64 nanoseconds: about 292 years at most.
    assert to_duration_seconds("d", "2562047h") == 2562047 * 3600
    for too_long in ("2562048h", "99999999999h", 10**12, "9" * 30):
        with pytest.raises(InvalidRequest):
            to_duration_seconds("d", too_long)


def test_lease_seconds():
    assert lease_seconds("1h") == 3600
    assert lease_seconds(None) == 0
    assert lease_seconds("") == 0
    assert lease_seconds("nope") is None
    assert lease_seconds(1.5) is None
    assert lease_seconds([1]) is None


def test_int_bool_map_fields():
    assert to_int("n", "0x10") == 16
    assert to_int("n", True) == 1
    assert to_int("n", None) == 0
    assert to_int("n", "") == 0
    with pytest.raises(InvalidRequest):
        to_int("n", 1.5)
    assert to_bool("b", "T") is True and to_bool("b", 0) is False and to_bool("b", "") is False
    with pytest.raises(InvalidRequest):
        to_bool("b", [True])
    assert to_map("m", None) is None and to_map("m", {"a": 1}) == {"a": 1}
    with pytest.raises(InvalidRequest):
        to_map("m", 3)


def test_comma_int_slice():
    assert to_comma_int_slice("v", "1,2") == [1, 2]
    assert to_comma_int_slice("v", ["3", 4]) == [3, 4]
    assert to_comma_int_slice("v", 5) == [5]
    assert to_comma_int_slice("v", True) == [1]
    assert to_comma_int_slice("v", None) == [] == to_comma_int_slice("v", "")
    with pytest.raises(InvalidRequest) as info:
        to_comma_int_slice("v", [{"a": 1}])
    assert info.value.messages[0].endswith(
        "'[0]' expected type 'int', got unconvertible type 'map[string]interface {}'"
    )


def test_weak_string():
    assert [weak_string(v) for v in ("x", 5, True, False, 1.5, 0.00001, None)] == [
        "x",
        "5",
        "1",
        "0",
        "1.5",
        "0.00001",
        "",
    ]
    with pytest.raises(ValueError):
        weak_string([1])


def test_unknown_fields_warning():
    assert unknown_fields_warning({"data": 1}, {"data"}) == []
    assert unknown_fields_warning({"b": 1, "a": 2, "data": 3}, {"data"}) == [
        "Endpoint ignored these unrecognized parameters: [a b]"
    ]
