"""The listener's JSON bounds and read timeouts (issue 10): Vault's names and defaults."""

from __future__ import annotations

import pytest

from strongroom.api.json_limits import JsonLimits
from strongroom.config import ConfigError, from_json, loads, to_json

BASE = 'storage "inmem" {}\n'


def listener(body: str = ""):
    return loads(BASE + 'listener "tcp" {\n  tls_disable = true\n' + body + "}\n", hostname="h").listeners[0]


def test_defaults_are_vaults():
    limits = JsonLimits.of(listener())
    assert limits == JsonLimits(
        max_depth=300,
        max_string_value_length=1048576,
        max_object_entry_count=10000,
        max_array_element_count=10000,
        max_token=500000,
    )
    assert (listener().http_read_header_timeout_seconds, listener().http_read_timeout_seconds) == (10.0, 30.0)


def test_every_key_is_read_and_reaches_the_parser():
    parsed = listener(
        "max_json_depth = 20\nmax_json_string_value_length = 64\nmax_json_object_entry_count = 5\n"
        'max_json_array_element_count = 6\nmax_json_token = 0\nhttp_read_header_timeout = "2s"\n'
        'http_read_timeout = "0"\n'
    )
    assert JsonLimits.of(parsed) == JsonLimits(20, 64, 5, 6, 0)
    assert (parsed.http_read_header_timeout_seconds, parsed.http_read_timeout_seconds) == (2.0, 0.0)
    config = loads(BASE + 'listener "tcp" {\n tls_disable = true\n max_json_depth = 20\n}\n', hostname="h")
    assert from_json(to_json(config)) == config


@pytest.mark.parametrize("depth", [0, -1, 351, 100000])
def test_depth_stays_within_what_the_interpreter_can_audit(depth):
    with pytest.raises(ConfigError, match="max_json_depth: must be between 1 and 350"):
        listener(f"max_json_depth = {depth}\n")


@pytest.mark.parametrize(
    "body, key",
    [
        ('max_json_token = "many"\n', "max_json_token"),
        ('http_read_header_timeout = "soon"\n', "http_read_header_timeout"),
        ("max_json_array_element_count = 1.5\n", "max_json_array_element_count"),
    ],
)
def test_bad_values_name_the_key(body, key):
    with pytest.raises(ConfigError) as info:
        listener(body)
    assert key in info.value.key
