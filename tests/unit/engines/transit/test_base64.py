"""Base64 fields decode as Go's ``base64.StdEncoding``, with its error offsets (checked against OpenBao 2.7.2)."""

from __future__ import annotations

import pytest

from strongroom.engines.transit.policy import b64decode


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("aGk", 0),
        ("aGk=!", 4),
        ("aGVsbG8*", 7),
        ("aGVsbG8", 4),
        ("aG=k", 2),
        ("aGk==", 4),
        ("aGVsbG8gd", 8),
        ("aGV sbG8=", 3),
        ("!!", 0),
    ],
)
def test_go_error_offsets(text, offset):
    with pytest.raises(ValueError, match=f"^illegal base64 data at input byte {offset}$"):
        b64decode(text)


@pytest.mark.parametrize(("text", "raw"), [("", b""), ("aGk=", b"hi"), ("aGVs\nbG8=", b"hello"), ("aA==", b"h")])
def test_valid(text, raw):
    assert b64decode(text) == raw
