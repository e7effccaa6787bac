"""Server-config durations stop where Vault's do: a Go ``time.Duration`` (int64 nanoseconds, ~292 years).

``default_lease_ttl = "2562048h"`` in the server config used to be accepted and then
reported to every client as a lease no Vault client can read back."""

from __future__ import annotations

import pytest

from strongroom.config import ConfigError, loads, parse_duration

MINIMAL = 'storage "consul" {}\nlistener "tcp" {\n  tls_disable = true\n}\n'


@pytest.mark.parametrize("value", ["2562048h", "106752d", 9223372037, 1e30, "9223372037"])
def test_longer_than_a_go_duration_is_refused(value):
    with pytest.raises(ValueError, match=r"longer than 9223372036s \(about 292 years\)"):
        parse_duration(value)


@pytest.mark.parametrize(
    "value, seconds", [("2562047h", 2562047 * 3600), ("106751d", 106751 * 86400), (9223372036, 9223372036)]
)
def test_the_longest_go_duration_is_taken(value, seconds):
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("key", ["default_lease_ttl", "max_lease_ttl"])
def test_server_config_refuses_a_lease_ttl_beyond_292_years(key):
    with pytest.raises(ConfigError) as info:
        loads(f"{key} = 9223372037\n" + MINIMAL, hostname="node1", cpu_count=4)
    assert info.value.key == key
    assert "longer than 9223372036s" in str(info.value)
