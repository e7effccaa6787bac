"""Lease TTLs and settings of ``sys/mounts`` enable and ``sys/{mounts,auth}/<path>/tune``.

A value Vault's types cannot hold is a 400 in Vault's envelope with OpenBao
2.7.2's message, nothing is stored and the cached mount table is unchanged (a
``default_lease_ttl`` of 1e30 used to be accepted and then broke
``bao secrets list``).  Strongroom also refuses the negative TTLs that Vault
stores as they are.
"""

from __future__ import annotations

import copy

import pytest

OVERFLOW = "multiplication of durations resulted in overflow, one operand may be too large"

REFUSED_TTLS = [
    (1e30, 'time: unknown unit "e" in duration "1e30"'),
    ("1e30", 'time: unknown unit "e" in duration "1e30"'),
    ("1e999", 'time: unknown unit "e" in duration "1e999"'),
    ("NaN", 'time: invalid duration "NaN"'),
    ("Infinity", 'time: invalid duration "Infinity"'),
    ("-Infinity", 'time: invalid duration "-Infinity"'),
    (1.5, 'time: missing unit in duration "1.5"'),
    (9223372037, OVERFLOW),
    (10**30, 'time: invalid duration "1000000000000000000000000000000"'),
    ("106752d", OVERFLOW),
    ("2562048h", 'time: invalid duration "2562048h"'),
    ("1.5d", 'strconv.ParseInt: parsing "1.5": invalid syntax'),
]


def tables(node):
    return copy.deepcopy({p: vars(e) for p, e in node.core.mounts.entries().items()}), copy.deepcopy(
        {p: vars(e) for p, e in node.core.auth_mounts.entries().items()}
    )


def assert_refused(node, method, path, body, message):
    assert node.request("GET", "sys/mounts").status_code == 200  # the core has loaded its tables
    stored, cached = node.snapshot(), tables(node)
    result = node.request(method, path, json=body)
    assert result.status_code == 400, result.text
    assert result.json == {"errors": [message]}
    assert node.snapshot() == stored
    assert tables(node) == cached
    # The listing the vault CLI reads (`secrets list`) still renders.
    assert node.request("GET", "sys/mounts").status_code == 200


@pytest.fixture
def kv(unsealed):
    assert unsealed.request("POST", "sys/mounts/kv", json={"type": "kv"}).status_code == 204
    assert unsealed.request("POST", "sys/mounts/kv/tune", json={"default_lease_ttl": "1h"}).status_code == 204
    return unsealed


@pytest.mark.parametrize("key", ["default_lease_ttl", "max_lease_ttl"])
@pytest.mark.parametrize(
    "value, message",
    REFUSED_TTLS
    + [
        (-1, "{key} must be positive"),
        ("-5m", "{key} must be positive"),
        (
            [1],
            "Field validation failed: error converting input for field \"{key}\": '' expected type 'string', "
            "got unconvertible type '[]interface {{}}'",
        ),
    ],
)
@pytest.mark.parametrize("path", ["sys/mounts/kv/tune", "sys/auth/token/tune"])
def test_tune_refuses_ttls_vault_cannot_hold(kv, path, key, value, message):
    assert_refused(kv, "POST", path, {key: value, "description": "not stored"}, message.format(key=key))


def test_tune_keeps_max_at_or_above_default(kv):
    assert_refused(
        kv,
        "POST",
        "sys/mounts/kv/tune",
        {"max_lease_ttl": "30m"},
        "backend max lease TTL of 1800 would be less than backend default lease TTL of 3600",
    )
    assert_refused(
        kv,
        "POST",
        "sys/mounts/kv/tune",
        {"default_lease_ttl": "3h", "max_lease_ttl": "2h"},
        "backend max lease TTL of 7200 would be less than backend default lease TTL of 10800",
    )
    assert kv.request("POST", "sys/mounts/kv/tune", json={"max_lease_ttl": "2h"}).status_code == 204


def test_tune_empty_keeps_and_system_resets(kv):
    assert (
        kv.request(
            "POST", "sys/mounts/kv/tune", json={"default_lease_ttl": "", "max_lease_ttl": None, "description": "d"}
        ).status_code
        == 204
    )
    assert kv.request("GET", "sys/mounts/kv/tune").json["data"]["default_lease_ttl"] == 3600
    assert kv.request("POST", "sys/mounts/kv/tune", json={"default_lease_ttl": "system"}).status_code == 204
    assert kv.request("GET", "sys/mounts/kv/tune").json["data"]["default_lease_ttl"] == 2_764_800


def test_tune_takes_the_longest_go_duration(kv):
    assert kv.request("POST", "sys/mounts/kv/tune", json={"max_lease_ttl": 9223372036}).status_code == 204
    assert kv.request("GET", "sys/mounts/kv/tune").json["data"]["max_lease_ttl"] == 9223372036


@pytest.mark.parametrize(
    "value, message",
    [
        ("bogus", "invalid listing_visibility bogus"),
        (5, "invalid listing_visibility 5"),
    ],
)
def test_tune_refuses_unknown_listing_visibility(kv, value, message):
    assert_refused(kv, "POST", "sys/mounts/kv/tune", {"listing_visibility": value}, message)


@pytest.mark.parametrize("key, which", [("default_lease_ttl", "default"), ("max_lease_ttl", "max")])
@pytest.mark.parametrize("value, message", REFUSED_TTLS)
def test_enable_refuses_ttls_vault_cannot_hold(unsealed, key, which, value, message):
    text = {1e30: "1e30", 1.5: "1.5", 9223372037: "9223372037", 10**30: str(10**30)}.get(value, value)
    assert_refused(
        unsealed,
        "POST",
        "sys/mounts/new",
        {"type": "kv", "config": {key: value}},
        f"unable to parse {which} TTL of {text}: {message}",
    )
    assert "new/" not in unsealed.request("GET", "sys/mounts").json["data"]


@pytest.mark.parametrize(
    "config, message",
    [
        ({"default_lease_ttl": "-1h"}, "default_lease_ttl must be positive"),
        ({"default_lease_ttl": True}, "unable to convert given mount config information"),
        ({"max_lease_ttl": [1]}, "unable to convert given mount config information"),
        ({"force_no_cache": "yes"}, "unable to convert given mount config information"),
        ({"force_no_cache": 1}, "unable to convert given mount config information"),
        ({"listing_visibility": "bogus"}, "invalid listing_visibility bogus"),
        (
            {"default_lease_ttl": "2h", "max_lease_ttl": "1h"},
            "given default lease TTL greater than given max lease TTL",
        ),
    ],
)
def test_enable_refuses_bad_config(unsealed, config, message):
    assert_refused(unsealed, "POST", "sys/mounts/new", {"type": "kv", "config": config}, message)


def test_enable_refuses_a_config_that_is_not_an_object(unsealed):
    assert_refused(
        unsealed,
        "POST",
        "sys/mounts/new",
        {"type": "kv", "config": "str"},
        "Field validation failed: error converting input for field \"config\": '' expected type "
        "'map[string]interface {}', got unconvertible type 'string'",
    )


def test_enable_takes_numbers_as_seconds_and_system(unsealed):
    body = {"type": "kv", "config": {"default_lease_ttl": 3600, "max_lease_ttl": "system", "force_no_cache": True}}
    assert unsealed.request("POST", "sys/mounts/new", json=body).status_code == 204
    config = unsealed.request("GET", "sys/mounts/new").json["data"]["config"]
    assert config["default_lease_ttl"] == 3600 and config["max_lease_ttl"] == 0 and config["force_no_cache"] is True


def test_a_default_above_the_system_max_is_refused_when_no_max_is_given(unsealed):
    """Vault's handleMount: default_lease_ttl alone may not exceed the system max (768h here)."""
    before = unsealed.snapshot()
    result = unsealed.request("POST", "sys/mounts/long", json={"type": "kv", "config": {"default_lease_ttl": "769h"}})
    assert result.status_code == 400
    assert result.json["errors"] == ["given default lease TTL greater than system max lease TTL of 2764800"]
    assert unsealed.snapshot() == before
    ok = unsealed.request("POST", "sys/mounts/long", json={"type": "kv", "config": {"default_lease_ttl": "768h"}})
    assert ok.status_code == 204
