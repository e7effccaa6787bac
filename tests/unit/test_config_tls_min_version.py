"""storage "consul" ``tls_min_version``: Vault's values, its default, errors naming the key.

https://developer.hashicorp.com/vault/docs/configuration/storage/consul#tls_min_version
"""

from __future__ import annotations

import ssl

import pytest

from strongroom.config import ConfigError, ServerConfig, StorageConfig, from_json, loads, to_json
from strongroom.server.build import make_backend
from strongroom.storage.consul_transport import Transport

PLAIN = 'listener "tcp" {\n  tls_disable = true\n}\n'
VERSIONS = {
    "tls10": ssl.TLSVersion.TLSv1,
    "tls11": ssl.TLSVersion.TLSv1_1,
    "tls12": ssl.TLSVersion.TLSv1_2,
    "tls13": ssl.TLSVersion.TLSv1_3,
}


def parse(text: str) -> ServerConfig:
    return loads(text, hostname="node1", cpu_count=4)


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value


def consul(*lines: str, address: str = "https://127.0.0.1:8501") -> str:
    body = "".join(f"  {line}\n" for line in lines)
    return f'storage "consul" {{\n  address = "{address}"\n{body}}}\n' + PLAIN


@pytest.mark.parametrize("value", list(VERSIONS))
def test_vault_values_are_accepted(value):
    assert parse(consul(f'tls_min_version = "{value}"')).storage.tls_min_version == value


def test_default_is_tls12():
    assert parse(consul()).storage.tls_min_version == "tls12"
    assert parse(consul(address="127.0.0.1:8500")).storage.tls_min_version == "tls12"
    assert StorageConfig(type="consul").tls_min_version == "tls12"


@pytest.mark.parametrize("value", ['"tls14"', '"TLSv1_3"', '"1.3"', '""'])
def test_invalid_value_stops_start_up_naming_the_key(value):
    err = error(consul(f"tls_min_version = {value}"))
    assert str(err) == (
        f'storage "consul".tls_min_version: invalid value {value}: must be one of "tls10", "tls11", "tls12", "tls13"'
    )
    assert err.key == 'storage "consul".tls_min_version'


def test_wrong_type_names_the_key():
    err = error(consul("tls_min_version = 13"))
    assert str(err) == 'storage "consul".tls_min_version: expected a string, got 13'
    assert err.key == 'storage "consul".tls_min_version'


def test_a_tls_floor_next_to_plain_http_is_refused():
    """Like the other TLS keys: over plain HTTP it would look secure and do nothing."""
    err = error(consul('tls_min_version = "tls13"', address="10.0.0.5:8500"))
    assert str(err) == (
        'storage "consul".tls_min_version: Consul is reached over plain HTTP: set scheme = "https" '
        "(or an https:// address) to use TLS"
    )
    assert err.key == 'storage "consul".tls_min_version'
    # Written out at its default it changes nothing, so it is accepted.
    assert parse(consul('tls_min_version = "tls12"', address="10.0.0.5:8500")).storage.scheme == "http"


def test_unknown_to_inmem_storage():
    assert 'storage "inmem": unknown key "tls_min_version"' in str(
        error('storage "inmem" {\n  tls_min_version = "tls13"\n}\n' + PLAIN)
    )


def test_json_round_trip_keeps_it():
    config = parse(consul('tls_min_version = "tls13"'))
    assert from_json(to_json(config)) == config
    assert from_json(to_json(config)).storage.tls_min_version == "tls13"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")  # what tls10 and tls11 ask for
@pytest.mark.parametrize("value", list(VERSIONS))
def test_make_backend_applies_it_to_both_paths_to_consul(value):
    """The hot-path transport's SSL context and py-consul's HTTPS pools (sessions,
    locks, watches) get the same floor; nothing connects here."""
    backend = make_backend(parse(consul(f'tls_min_version = "{value}"')))
    try:
        client = backend.client
        assert Transport(backend.endpoint).ssl_context.minimum_version == VERSIONS[value]
        adapter = client.http.session.get_adapter(client.http.base_uri)
        pool = adapter.poolmanager.connection_from_url(client.http.base_uri)
        assert pool.ssl_minimum_version == VERSIONS[value]
    finally:
        backend.close()
