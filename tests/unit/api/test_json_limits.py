"""Bounded JSON bodies (api/json_limits.py): measured before they are parsed."""

from __future__ import annotations

import json

import pytest

from strongroom.api.json_limits import YIELD_EVERY, JsonLimits, check_limits, loads_bounded
from strongroom.errors import InvalidRequest

SMALL = JsonLimits(
    max_depth=3, max_string_value_length=8, max_object_entry_count=3, max_array_element_count=4, max_token=1000
)


def refused(raw: bytes, limits: JsonLimits = SMALL) -> str:
    with pytest.raises(InvalidRequest) as caught:
        loads_bounded(raw, limits)
    return caught.value.messages[0]


def test_within_every_bound_parses_as_json_does():
    raw = b'{"a": [1, 2, {"b": "12345678"}], "c": null, "d": true}'
    assert loads_bounded(raw, SMALL) == json.loads(raw)


def test_depth_is_bounded():
    assert loads_bounded(b"[[[1]]]", SMALL) == [[[1]]]
    assert "nesting depth of 3" in refused(b"[[[[1]]]]")
    assert "nesting depth" in refused(b'{"a":{"b":{"c":{"d":1}}}}')


def test_string_length_is_bounded_after_decoding_escapes():
    assert loads_bounded(b'["12345678"]', SMALL) == ["12345678"]
    assert "maximum allowed length of 8 bytes" in refused(b'["123456789"]')
    # Eight decoded characters spelled with escapes are within the bound; a key counts as a string too.
    assert loads_bounded(b'["\\u0041\\u0042\\n\\"4567"]', SMALL) == ['AB\n"4567']
    assert "maximum allowed length" in refused(b'{"123456789": 1}')
    # Bytes, not characters: four two-byte characters are eight bytes, five are ten.
    assert loads_bounded('["éééé"]'.encode(), SMALL) == ["éééé"]
    assert "maximum allowed length" in refused('["ééééé"]'.encode())


def test_object_entries_and_array_elements_are_bounded_per_container():
    assert loads_bounded(b'{"a":1,"b":2,"c":3}', SMALL)
    assert "number of entries (3)" in refused(b'{"a":1,"b":2,"c":3,"d":4}')
    assert loads_bounded(b"[1,2,3,4]", SMALL) == [1, 2, 3, 4]
    assert "number of elements (4)" in refused(b"[1,2,3,4,5]")
    # Commas inside strings and inside nested containers count for nobody else.
    assert loads_bounded(b'[",,,,,,", [1,2,3,4], {"a":[1,2,3,4]}]', SMALL)


def test_the_total_number_of_tokens_is_bounded():
    raw = b"[" + b",".join(b"[1,2,3,4]" for _ in range(300)) + b"]"
    assert "number of tokens (1000)" in refused(raw, JsonLimits(max_array_element_count=0, max_token=1000))


def test_zero_turns_a_bound_off():
    unbounded = JsonLimits(0, 0, 0, 0, 0)
    deep = b"[" * 400 + b"]" * 400
    assert loads_bounded(deep, unbounded)
    assert len(loads_bounded(b"[" + b",".join(b"0" for _ in range(20000)) + b"]", unbounded)) == 20000


def test_vault_defaults():
    limits = JsonLimits()
    assert (
        limits.max_depth,
        limits.max_string_value_length,
        limits.max_object_entry_count,
        limits.max_array_element_count,
    ) == (300, 1048576, 10000, 10000)
    assert "nesting depth of 300" in refused(b"[" * 301 + b"]" * 301, limits)
    assert loads_bounded(b"[" * 300 + b"]" * 300, limits)


def test_a_hostile_body_is_refused_after_reading_only_what_proves_it():
    """2.3 million keys: refused at the 10,001st, long before the end of the body."""
    raw = b"{" + b",".join(b'"k%d":0' % i for i in range(2_300_000)) + b"}"
    calls = []
    with pytest.raises(InvalidRequest):
        check_limits(raw, JsonLimits(), cooperate=lambda: calls.append(1))
    assert len(calls) <= 10_000 * 3 // YIELD_EVERY + 1


def test_a_long_scan_yields_to_other_requests():
    raw = b"[" + b",".join(b'"x"' for _ in range(5 * YIELD_EVERY)) + b"]"
    calls = []
    check_limits(raw, JsonLimits(max_array_element_count=0), cooperate=lambda: calls.append(1))
    assert len(calls) >= 5


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": 1e400}',
        b'{"a": -1e999}',
        b'{"a": "\\ud800"}',
        b'{"a": "\\udc00"}',
        b'{"a": "x\\uDBFFy"}',
        b'{"a": "\\ud800\\u0041"}',
        b'{"a": "\xed\xa0\x80"}',
        b'{"a": "\xff"}',
        b'{"a": 1',
        b'{"a": "open',
        b"[1,]",
        b'{"a":1,}',
        b"{,}",
        b"\xff\xfe{\x00}\x00",
    ],
)
def test_what_go_refuses_is_refused(raw):
    assert refused(raw, JsonLimits())


def test_valid_unicode_and_big_integers_are_kept_exactly():
    assert loads_bounded(b'{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}', JsonLimits()) == {"a": "😀", "b": "\\ud800"}
    assert loads_bounded(b'{"n": 123456789012345678901234567890}', JsonLimits()) == {
        "n": 123456789012345678901234567890
    }
    assert loads_bounded(b'{"f": 1.5e300}', JsonLimits()) == {"f": 1.5e300}


def test_a_string_with_many_escaped_quotes_is_one_string():
    raw = b'["' + b'\\"' * (3 * YIELD_EVERY) + b'"]'
    calls = []
    check_limits(raw, JsonLimits(), cooperate=lambda: calls.append(1))
    assert calls and loads_bounded(raw, JsonLimits()) == ['"' * (3 * YIELD_EVERY)]


def test_a_body_whose_counts_prove_it_within_bounds_skips_the_scan(monkeypatch):
    """A body with fewer commas than the entry and element bounds, no more
    opening brackets than the depth bound, fewer quotes, brackets and commas
    than the token bound and no more bytes than the string bound cannot
    exceed one: it is parsed without the scan (a transit batch of 100 is such
    a body).  A body whose counts could exceed one is still scanned and refused."""
    from strongroom.api import json_limits

    scanned: list[bytes] = []
    real = json_limits.check_limits
    monkeypatch.setattr(json_limits, "check_limits", lambda raw, *args: (scanned.append(raw), real(raw, *args)))
    batch = json.dumps({"batch_input": [{"plaintext": "aGVsbG8gd29ybGQ=" * 11}] * 100}).encode()
    assert len(batch) > 18000
    assert json_limits.loads_bounded(batch, json_limits.DEFAULT_LIMITS)["batch_input"][0]["plaintext"]
    assert scanned == []
    deep = b"[" * 301 + b"]" * 301  # 602 bytes, one bracket too deep for the default 300
    with pytest.raises(InvalidRequest, match="nesting depth of 300"):
        json_limits.loads_bounded(deep, json_limits.DEFAULT_LIMITS)
    assert scanned == [deep]
    assert "entries (3)" in refused(b'{"a":1,"b":2,"c":3,"d":4}')  # 3 commas: scanned
    assert "elements (4)" in refused(b"[1,2,3,4,5]")
    # Commas inside strings only make the count larger: scanned, and within bounds.
    assert loads_bounded(b'{"a": "1,2,3,4"}', JsonLimits(max_object_entry_count=3)) == {"a": "1,2,3,4"}
