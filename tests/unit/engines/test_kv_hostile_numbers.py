"""KV v2 refuses numbers Vault's types cannot hold, and stores nothing when it does.

Messages were compared with OpenBao 2.7.2 where it refuses too; where OpenBao
accepts a value it then mishandles (``version=-1`` reads the latest version,
``max_versions`` above a uint32 wraps), Strongroom refuses it.
"""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidRequest
from strongroom.sdk import logical
from tests.helpers.hostile import HOSTILE_DURATIONS
from tests.unit.engines.kv_support import make_request

INT = "'' cannot parse value as 'int': strconv.ParseInt: invalid syntax"
INT_RANGE = "'' cannot parse value as 'int': strconv.ParseInt: value out of range"


def call(engine, operation, relative_path, data=None):
    return engine.handle(make_request(operation, relative_path, data))


def refused(engine, backend, operation, path, body) -> str:
    """Send the request; assert it is refused before any storage write; return the message."""
    writes_before = len(backend.txns)
    with pytest.raises(InvalidRequest) as info:
        call(engine, operation, path, body)
    assert len(backend.txns) == writes_before
    return info.value.messages[0]


@pytest.fixture
def secret(kv2):
    call(kv2, logical.UPDATE, "data/s", {"data": {"a": 1}})
    call(kv2, logical.UPDATE, "data/s", {"data": {"a": 2}})
    return "s"


@pytest.mark.parametrize(
    "value, message",
    [
        ("-1", "version must not be negative"),
        ("-9223372036854775808", "version must not be negative"),
        ("99999999999999999999", f'Field validation failed: error converting input for field "version": {INT_RANGE}'),
        ("1e30", f'Field validation failed: error converting input for field "version": {INT}'),
        ("1.5", f'Field validation failed: error converting input for field "version": {INT}'),
        ("NaN", f'Field validation failed: error converting input for field "version": {INT}'),
        ("Infinity", f'Field validation failed: error converting input for field "version": {INT}'),
        (" 1", f'Field validation failed: error converting input for field "version": {INT}'),
    ],
)
@pytest.mark.parametrize("endpoint", ["data/", "subkeys/"])
def test_read_refuses_versions_vault_cannot_hold(kv2, backend, secret, endpoint, value, message):
    assert refused(kv2, backend, logical.READ, endpoint + secret, {"version": value}) == message


def test_read_still_takes_zero_hex_and_plain_versions(kv2, secret):
    assert call(kv2, logical.READ, "data/s", {"version": "0"}).data["data"] == {"a": 2}
    assert call(kv2, logical.READ, "data/s", {"version": "0x1"}).data["data"] == {"a": 1}
    assert call(kv2, logical.READ, "data/s", {"version": "+1"}).data["data"] == {"a": 1}


@pytest.mark.parametrize(
    "value, message",
    [
        (10**30, f'Field validation failed: error converting input for field "max_versions": {INT_RANGE}'),
        (
            "99999999999999999999",
            f'Field validation failed: error converting input for field "max_versions": {INT_RANGE}',
        ),
        (1e30, f'Field validation failed: error converting input for field "max_versions": {INT}'),
        ("1e30", f'Field validation failed: error converting input for field "max_versions": {INT}'),
        (float("nan"), f'Field validation failed: error converting input for field "max_versions": {INT}'),
        (float("inf"), f'Field validation failed: error converting input for field "max_versions": {INT}'),
        ("Infinity", f'Field validation failed: error converting input for field "max_versions": {INT}'),
        (2.0, f'Field validation failed: error converting input for field "max_versions": {INT}'),
        (2**32, "max_versions must not be greater than 4294967295"),
        (2**63 - 1, "max_versions must not be greater than 4294967295"),
        (-1, "max_versions must not be negative"),
    ],
)
def test_config_refuses_max_versions_out_of_range(kv2, backend, value, message):
    assert refused(kv2, backend, logical.UPDATE, "config", {"max_versions": value, "cas_required": True}) == message
    assert call(kv2, logical.READ, "config").data["max_versions"] == 0
    assert call(kv2, logical.READ, "config").data["cas_required"] is False


def test_config_takes_the_largest_uint32(kv2):
    call(kv2, logical.UPDATE, "config", {"max_versions": 4294967295})
    assert call(kv2, logical.READ, "config").data["max_versions"] == 4294967295


@pytest.mark.parametrize("operation", [logical.UPDATE, logical.PATCH])
@pytest.mark.parametrize(
    "value, message",
    [
        (10**30, "max_versions"),
        (2**32, "max_versions must not be greater than 4294967295"),
        (float("nan"), "max_versions"),
        (-3, "max_versions must not be negative"),
    ],
)
def test_metadata_refuses_max_versions_out_of_range(kv2, backend, secret, operation, value, message):
    assert message in refused(kv2, backend, operation, "metadata/s", {"max_versions": value})
    assert call(kv2, logical.READ, "metadata/s").data["max_versions"] == 0


@pytest.mark.parametrize("path", ["config", "metadata/s"])
@pytest.mark.parametrize(
    "value, detail",
    [
        *HOSTILE_DURATIONS,
        ("1.5d", 'strconv.ParseInt: parsing "1.5": invalid syntax'),
    ],
)
def test_delete_version_after_refuses_what_a_go_duration_cannot_hold(kv2, backend, secret, path, value, detail):
    message = refused(kv2, backend, logical.UPDATE, path, {"delete_version_after": value})
    assert message.endswith(f'error converting input for field "delete_version_after": {detail}')


@pytest.mark.parametrize("value", [2, 1.0, "yes", float("nan")])
def test_cas_required_takes_only_what_go_parsebool_reads(kv2, backend, value):
    message = refused(kv2, backend, logical.UPDATE, "config", {"cas_required": value})
    assert message.endswith("'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax")


@pytest.mark.parametrize("cas", [10**20, 1e30, 1.5, float("nan"), "NaN", [1]])
def test_cas_that_is_not_an_int64_is_a_parse_error(kv2, backend, secret, cas):
    message = refused(kv2, backend, logical.UPDATE, "data/s", {"data": {"a": 3}, "options": {"cas": cas}})
    assert message == "error parsing check-and-set parameter"
    assert call(kv2, logical.READ, "data/s").data["data"] == {"a": 2}


@pytest.mark.parametrize("endpoint", ["delete/", "undelete/", "destroy/"])
@pytest.mark.parametrize(
    "versions, element",
    [
        ([10**20], INT_RANGE.replace("''", "'[0]'")),
        ([1, 1e30], INT.replace("''", "'[1]'")),
        ("1,NaN", INT.replace("''", "'[1]'")),
        ([float("inf")], INT.replace("''", "'[0]'")),
    ],
)
def test_version_lists_refuse_numbers_vault_cannot_hold(kv2, backend, secret, endpoint, versions, element):
    message = refused(kv2, backend, logical.UPDATE, endpoint + secret, {"versions": versions})
    assert message == (
        'Field validation failed: error converting input for field "versions": '
        f"decoding failed due to the following error(s):\n\n{element}"
    )


@pytest.mark.parametrize(
    "ttl, seconds",
    [
        ("1h", 3600),
        (-1, -1),
        (9223372036, 9223372036),
        # Not a duration Vault can hold: the mount's default, as OpenBao answers.
        (9223372037, 2_764_800),
        ("106752d", 2_764_800),
        (1.5, 2_764_800),
        (1e30, 2_764_800),
        ("NaN", 2_764_800),
    ],
)
def test_kv1_ttl_that_is_not_a_go_duration_falls_back_to_the_default(kv1, ttl, seconds):
    call(kv1, logical.UPDATE, "x", {"ttl": ttl, "v": 1})
    assert call(kv1, logical.READ, "x").lease_duration == seconds
