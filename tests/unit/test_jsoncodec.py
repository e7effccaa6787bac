"""JSON on the hot paths (strongroom/jsoncodec.py): orjson's speed, the standard library's values."""

from __future__ import annotations

import json
import math

import pytest

from strongroom import jsoncodec

DOCUMENTS = [
    {"data": {"value": "x" * 64}, "options": {"cas": 3}},
    {"é": "ünïcödé ☃ 😀", "slash": "a/b</script>", "ctl": "\x00\x1f\u2028"},
    {"ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1], "floats": [0.1, -0.0, 1.5e300, 1e16, 5e-324]},
    {"nested": [[[{"a": None, "b": True, "c": False}]]]},
    [],
    "text",
]


@pytest.mark.parametrize("value", DOCUMENTS)
def test_dumps_parses_back_to_what_the_standard_library_writes(value):
    encoded = jsoncodec.dumps(value)
    assert json.loads(encoded) == json.loads(json.dumps(value))
    assert jsoncodec.loads(encoded) == value


def test_output_is_compact_utf8_in_insertion_order():
    assert jsoncodec.dumps({"b": 1, "a": [1, 2], "é": "☃"}) == '{"b":1,"a":[1,2],"é":"☃"}'.encode()
    assert jsoncodec.dumps_sorted({"b": 1, "a": {"d": 1, "c": 2}}) == b'{"a":{"c":2,"d":1},"b":1}'


def test_integers_beyond_64_bits_are_kept_exactly_both_ways():
    big = {"n": 123456789012345678901234567890, "m": -(2**63) - 1}
    encoded = jsoncodec.dumps(big)  # orjson refuses these: the standard library writes them
    assert encoded == b'{"n":123456789012345678901234567890,"m":-9223372036854775809}'
    assert jsoncodec.loads(encoded) == big  # orjson would give floats: the digits send it to json
    assert jsoncodec.loads(encoded.decode()) == big
    assert jsoncodec.dumps_sorted(big) == b'{"m":-9223372036854775809,"n":123456789012345678901234567890}'


def test_what_orjson_refuses_behaves_as_the_standard_library():
    # Non-string keys are written as json writes them.
    assert jsoncodec.dumps({1: "a", 2.5: "b"}) == b'{"1":"a","2.5":"b"}'
    # Documents orjson will not parse give json's value or json's error.
    assert math.isnan(jsoncodec.loads(b'{"a": NaN}')["a"])
    assert jsoncodec.loads(b'["\\ud800"]') == ["\ud800"]
    with pytest.raises(json.JSONDecodeError):
        jsoncodec.loads(b"{bad")
    with pytest.raises(UnicodeDecodeError):
        jsoncodec.loads(b'"\xff"')


def test_long_digit_runs_are_found():
    assert jsoncodec.long_digits(b'{"a": 12345678901234567890}')
    assert jsoncodec.long_digits(b'{"a": -1234567890123456789}')
    assert not jsoncodec.long_digits(b'{"a": 1234567890123456789}')  # 19 digits: below 2**64
    assert not jsoncodec.long_digits(b'{"a": -123456789012345678}')


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "9999999999999999999",
        "-9999999999999999999",
        "[1784567890123456789, -1784567890123456789]",
        '{"t": 1784567890123456789, "s": "-9999999999999999999"}',
        "99999999999999999999999",
    ],
)
def test_integers_at_the_edges_of_64_bits_parse_as_the_standard_library_parses_them(text):
    for raw in (text, text.encode()):
        value = jsoncodec.loads(raw)
        assert value == json.loads(text)
        assert json.dumps(value) == json.dumps(json.loads(text))  # same types: no int became a float
