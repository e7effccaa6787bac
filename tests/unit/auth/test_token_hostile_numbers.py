"""``auth/token/create`` and renew refuse numbers Vault's types cannot hold, and create nothing.

Messages are OpenBao 2.7.2's for the same requests (its token store reads
``ttl``, ``period``, ``explicit_max_ttl`` and ``lease`` as strings through
``parseutil.ParseDurationSecond``, ``num_uses`` as a framework ``TypeInt``,
``increment`` as a ``TypeDurationSecond``).
"""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidRequest
from tests.helpers.hostile import DURATION_OVERFLOW as OVERFLOW
from tests.helpers.hostile import HOSTILE_DURATIONS

INT = "Field validation failed: error converting input for field \"num_uses\": '' cannot parse value as 'int': "
BOOL = "'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax"


def refused(call, store, token, path, **data) -> str:
    before = store.list_accessors()
    with pytest.raises(InvalidRequest) as info:
        call(path, token, **data)
    assert store.list_accessors() == before
    return info.value.messages[0]


@pytest.mark.parametrize("name", ["ttl", "period", "explicit_max_ttl", "lease"])
@pytest.mark.parametrize(
    "value, message",
    [
        *HOSTILE_DURATIONS,
        (-1, "{name} must be positive"),
        ("-1s", "{name} must be positive"),
    ],
)
def test_create_refuses_durations_vault_cannot_hold(call, store, root, name, value, message):
    assert refused(call, store, root[0], "create", **{name: value}) == message.format(name=name)


@pytest.mark.parametrize(
    "value, reason",
    [
        (1e30, "invalid syntax"),
        (1.5, "invalid syntax"),
        (1.0, "invalid syntax"),
        ("NaN", "invalid syntax"),
        (float("nan"), "invalid syntax"),
        (float("inf"), "invalid syntax"),
        (2**63, "value out of range"),
        ("99999999999999999999", "value out of range"),
    ],
)
def test_create_refuses_num_uses_vault_cannot_hold(call, store, root, value, reason):
    assert refused(call, store, root[0], "create", num_uses=value) == INT + f"strconv.ParseInt: {reason}"


@pytest.mark.parametrize("name", ["renewable", "no_parent", "no_default_policy"])
@pytest.mark.parametrize("value", [2, 1.5, float("nan"), " true"])
def test_create_refuses_booleans_go_cannot_parse(call, store, root, name, value):
    message = refused(call, store, root[0], "create", **{name: value})
    assert message == f'Field validation failed: error converting input for field "{name}": {BOOL}'


def test_create_takes_the_largest_values_vault_takes(call, root):
    resp = call("create", root[0], ttl="2562047h", num_uses=2**63 - 1, renewable=1, no_default_policy=0)
    assert resp.auth["lease_duration"] > 0
    assert call("create", root[0], ttl=True).auth["lease_duration"] == 1  # Vault reads true as "1"


@pytest.mark.parametrize(
    "value, detail",
    [
        (1e30, 'time: unknown unit "e" in duration "1e30"'),
        (float("inf"), 'time: invalid duration "+Inf"'),
        (1.5, 'time: missing unit in duration "1.5"'),
        (9223372037, OVERFLOW),
        (True, "could not parse duration from input"),
        ("-5s", "cannot provide negative value '-5'"),
    ],
)
def test_renew_refuses_increments_vault_cannot_hold(call, root, value, detail):
    token = call("create", root[0], policies=["x"], ttl="1h").auth["client_token"]
    with pytest.raises(InvalidRequest) as info:
        call("renew", root[0], token=token, increment=value)
    assert info.value.messages == [f'Field validation failed: error converting input for field "increment": {detail}']


def test_meta_numbers_become_text_without_crashing(call, root):
    """A float that is no integer (NaN, Infinity from code paths that allow them) used to
    crash ``int(item)``: metadata values are weakly strings, as in Vault."""
    meta = {"n": float("nan"), "i": float("inf"), "f": 1.5, "w": 2.0, "b": True, "z": None}
    stored = call("create", root[0], policies=["x"], meta=meta).auth["metadata"]
    assert stored == {"n": "NaN", "i": "+Inf", "f": "1.5", "w": "2", "b": "1", "z": ""}
