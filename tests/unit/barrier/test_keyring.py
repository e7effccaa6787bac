"""The keyring: generation, rotation, immutability and serialisation."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from strongroom.barrier import Key, Keyring
from strongroom.errors import IntegrityError

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class StepClock:
    """Each call is one minute after the previous one."""

    def __init__(self):
        self._ticks = itertools.count()

    def __call__(self) -> datetime:
        return START + timedelta(minutes=next(self._ticks))


def counting_randbytes():
    """Distinct, predictable 'random' bytes: the n-th call returns n repeated."""
    counter = itertools.count(1)
    return lambda size: bytes([next(counter)]) * size


def test_generate_creates_root_key_and_term_one():
    keyring = Keyring.generate(StepClock(), randbytes=counting_randbytes())
    assert keyring.active_term == 1
    assert set(keyring.keys) == {1}
    active = keyring.active_key()
    assert active.term == 1
    assert len(active.value) == 32 and len(keyring.root_key) == 32
    assert active.value != keyring.root_key
    assert active.install_time == START


def test_generate_with_real_randomness_gives_distinct_keyrings():
    clock = StepClock()
    a, b = Keyring.generate(clock), Keyring.generate(clock)
    assert a.root_key != b.root_key
    assert a.active_key().value != b.active_key().value


def test_rotate_adds_active_term_and_keeps_old_keys():
    clock = StepClock()
    first = Keyring.generate(clock)
    second = first.rotate(clock)
    third = second.rotate(clock)
    assert (first.active_term, second.active_term, third.active_term) == (1, 2, 3)
    assert third.key(1) == first.key(1)
    assert third.key(2) == second.key(2)
    assert third.active_key().install_time == START + timedelta(minutes=2)
    assert len({k.value for k in third.keys.values()}) == 3
    assert third.root_key == first.root_key
    # Rotation never changes the keyring it was called on.
    assert set(first.keys) == {1} and first.active_term == 1


def test_key_of_unknown_term_is_none():
    keyring = Keyring.generate(StepClock())
    assert keyring.key(2) is None
    assert keyring.key(0) is None


def test_with_root_key_replaces_only_the_root_key():
    keyring = Keyring.generate(StepClock()).rotate(StepClock())
    new_root = b"\x42" * 32
    rekeyed = keyring.with_root_key(new_root)
    assert rekeyed.root_key == new_root
    assert rekeyed.keys == keyring.keys
    assert rekeyed.active_term == keyring.active_term
    assert keyring.root_key != new_root


def test_with_root_key_rejects_wrong_length():
    with pytest.raises(IntegrityError):
        Keyring.generate(StepClock()).with_root_key(b"short")


def test_keyring_is_immutable():
    keyring = Keyring.generate(StepClock())
    with pytest.raises(dataclasses.FrozenInstanceError):
        keyring.active_term = 2
    with pytest.raises(TypeError):
        keyring.keys[2] = keyring.active_key()
    with pytest.raises(dataclasses.FrozenInstanceError):
        keyring.active_key().value = b"x" * 32


def test_caller_dict_cannot_change_the_keyring():
    key = Key(term=1, value=b"\x01" * 32, install_time=START)
    keys = {1: key}
    keyring = Keyring(root_key=b"\x00" * 32, keys=keys, active_term=1)
    keys[2] = Key(term=2, value=b"\x02" * 32, install_time=START)
    assert set(keyring.keys) == {1}


def test_repr_does_not_leak_key_material():
    keyring = Keyring.generate(StepClock(), randbytes=lambda n: b"\xab" * n)
    text = repr(keyring)
    assert "\\xab" not in text
    assert base64.b64encode(b"\xab" * 32).decode() not in text


@pytest.mark.parametrize(
    "root_key, keys, active_term",
    [
        (b"short", {1: Key(1, b"\x01" * 32, START)}, 1),
        (b"\x00" * 32, {}, 1),
        (b"\x00" * 32, {1: Key(1, b"\x01" * 32, START)}, 2),
        (b"\x00" * 32, {1: Key(2, b"\x01" * 32, START)}, 1),
        (b"\x00" * 32, {1: Key(1, b"\x01" * 31, START)}, 1),
        (b"\x00" * 32, {0: Key(0, b"\x01" * 32, START)}, 0),
        (b"\x00" * 32, {1: Key(1, b"\x01" * 32, START.replace(tzinfo=None))}, 1),
    ],
)
def test_inconsistent_keyrings_are_refused(root_key, keys, active_term):
    with pytest.raises(IntegrityError):
        Keyring(root_key=root_key, keys=keys, active_term=active_term)


def test_serialize_round_trip():
    clock = StepClock()
    keyring = Keyring.generate(clock).rotate(clock).rotate(clock)
    restored = Keyring.deserialize(keyring.serialize())
    assert restored == keyring
    assert restored.active_key().install_time == keyring.active_key().install_time


def test_serialized_form_is_json_with_base64_and_iso_times():
    keyring = Keyring.generate(StepClock(), randbytes=counting_randbytes())
    document = json.loads(keyring.serialize())
    assert document["active_term"] == 1
    assert base64.b64decode(document["root_key"]) == keyring.root_key
    [entry] = document["keys"]
    assert entry["term"] == 1
    assert base64.b64decode(entry["value"]) == keyring.key(1).value
    assert datetime.fromisoformat(entry["install_time"]) == START


def _valid_document() -> dict:
    clock = StepClock()
    return json.loads(Keyring.generate(clock).rotate(clock).serialize())


def _mutations():
    yield "not json", b"{not json"
    yield "not utf-8", b"\xff\xfe\x00"
    yield "a list", b"[]"
    yield "empty object", b"{}"
    for field in ("root_key", "active_term", "keys"):
        document = _valid_document()
        del document[field]
        yield f"missing {field}", document
    document = _valid_document()
    document["root_key"] = "!!!not base64!!!"
    yield "bad base64", document
    document = _valid_document()
    document["root_key"] = base64.b64encode(b"short").decode()
    yield "short root key", document
    document = _valid_document()
    document["keys"][0]["value"] = base64.b64encode(b"x" * 16).decode()
    yield "short term key", document
    document = _valid_document()
    document["active_term"] = 9
    yield "active term missing", document
    document = _valid_document()
    document["keys"][1]["term"] = 1
    yield "duplicate term", document
    document = _valid_document()
    document["keys"][0]["install_time"] = "yesterday"
    yield "bad time", document
    document = _valid_document()
    document["keys"][0]["install_time"] = "2026-01-02T03:04:05"
    yield "naive time", document
    document = _valid_document()
    document["keys"][0]["term"] = "1"
    yield "string term", document
    document = _valid_document()
    document["keys"] = [None]
    yield "null key entry", document
    document = _valid_document()
    document["root_key"] = 12
    yield "numeric root key", document
    yield "deeply nested", b"[" * 100000 + b"]" * 100000


@pytest.mark.parametrize("name, data", list(_mutations()), ids=[name for name, _ in _mutations()])
def test_deserialize_garbage_raises_integrity_error(name, data):
    if isinstance(data, dict):
        data = json.dumps(data).encode()
    with pytest.raises(IntegrityError):
        Keyring.deserialize(data)
