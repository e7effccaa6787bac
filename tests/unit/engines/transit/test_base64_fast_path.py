"""``b64decode``'s fast path (canonical input decoded in C) answers exactly as Go's walk does:
the same bytes for every input it takes, and every other input still goes through the walk."""

from __future__ import annotations

import base64
import itertools
import random

import pytest

from strongroom.engines.transit import policy
from strongroom.engines.transit.policy import b64decode


def walked(text: str) -> bytes | str:
    """The answer without the fast path: Go's walk, then the decode."""
    offset = policy._go_base64_error(text)
    if offset is not None:
        return f"illegal base64 data at input byte {offset}"
    return base64.b64decode(text.replace("\r", "").replace("\n", ""))


def answer(text: str) -> bytes | str:
    try:
        return b64decode(text)
    except ValueError as exc:
        return str(exc)


def test_every_short_string_over_a_small_alphabet_answers_as_the_walk():
    for length in range(7):
        for chars in itertools.product("AB+=\n", repeat=length):
            text = "".join(chars)
            assert answer(text) == walked(text), repr(text)


def test_random_strings_answer_as_the_walk():
    rng = random.Random(14)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n-_ ."
    for _ in range(5000):
        text = "".join(rng.choice(alphabet[:64] if rng.random() < 0.7 else alphabet) for _ in range(rng.randrange(24)))
        for candidate in (text, text + "=", text + "==", text[: len(text) // 4 * 4]):
            assert answer(candidate) == walked(candidate), repr(candidate)


@pytest.mark.parametrize("raw", [b"", b"x", b"xy", b"xyz", bytes(range(128)), bytes(range(256)) * 3])
def test_canonical_input_takes_the_fast_path(raw, monkeypatch):
    def no_walk(text: str) -> int | None:
        raise AssertionError("walked")

    monkeypatch.setattr(policy, "_go_base64_error", no_walk)
    assert b64decode(base64.b64encode(raw).decode()) == raw
