"""``min_wrapping_ttl`` / ``max_wrapping_ttl`` in a policy: Vault's ``ParseDurationSecond``
(``strongroom.fields``), so nothing a Go duration cannot hold is ever stored in a policy."""

from __future__ import annotations

import json

import pytest

from strongroom.core.policy import parse_policy
from strongroom.errors import InvalidRequest

OVERFLOW = "multiplication of durations resulted in overflow, one operand may be too large"


@pytest.mark.parametrize(
    "value, message",
    [
        ('"1e30"', 'time: unknown unit "e" in duration "1e30"'),
        ('"NaN"', 'time: invalid duration "NaN"'),
        ('"Infinity"', 'time: invalid duration "Infinity"'),
        ('"2562048h"', 'time: invalid duration "2562048h"'),
        ('"106752d"', OVERFLOW),
        ("9223372037", OVERFLOW),
        ('"1.5d"', 'strconv.ParseInt: parsing "1.5": invalid syntax'),
        ('" 5s"', 'time: invalid duration " 5s"'),
    ],
)
def test_wrapping_ttls_a_go_duration_cannot_hold_are_refused(value, message):
    with pytest.raises(InvalidRequest) as info:
        parse_policy("p", f'path "a" {{\n capabilities = ["read"]\n max_wrapping_ttl = {value}\n}}')
    assert str(info.value) == f"failed to parse policy: error parsing max_wrapping_ttl: {message}"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e30])
def test_non_finite_json_numbers_are_refused(value):
    text = json.dumps({"path": {"a": {"capabilities": ["read"], "min_wrapping_ttl": value}}})
    with pytest.raises(InvalidRequest) as info:
        parse_policy("p", text)
    assert str(info.value) == f"failed to parse policy: error parsing min_wrapping_ttl: {OVERFLOW}"


def test_the_longest_go_duration_is_taken():
    (rule,) = parse_policy("p", 'path "a" {\n capabilities = ["read"]\n max_wrapping_ttl = "2562047h"\n}').rules
    assert rule.max_wrapping_ttl == 2562047 * 3600
