"""The server configuration: Vault's HCL into frozen dataclasses, errors naming the key."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strongroom.config import (
    DEFAULT_MAX_REQUEST_SIZE,
    ConfigError,
    ListenerConfig,
    ServerConfig,
    StorageConfig,
    TelemetryConfig,
    _clean,  # the python-hcl2 compatibility shim
    dev_config,
    from_json,
    load,
    loads,
    parse_duration,
    to_json,
)
from strongroom.config.loading import BACKEND_WARNING
from tests.helpers.pki import CertificateAuthority

HOST = "node1"


def parse(text: str, **kwargs) -> ServerConfig:
    kwargs.setdefault("hostname", HOST)
    kwargs.setdefault("cpu_count", 4)
    return loads(text, **kwargs)


def error(text: str, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, **kwargs)
    return info.value


CONSUL = 'storage "consul" {}\n'
PLAIN = 'listener "tcp" {\n  tls_disable = true\n}\n'
MINIMAL = CONSUL + PLAIN


@pytest.fixture
def tls_files(tmp_path):
    cert, key = tmp_path / "node.crt", tmp_path / "node.key"
    cert.write_text("dummy certificate\n")
    key.write_text("dummy key\n")
    return str(cert), str(key)


@pytest.fixture
def consul_pki(tmp_path):
    """Real PEM files for storage "consul" TLS: a CA, a client certificate with
    its key, another key, the same key encrypted, and a file that is no PEM at all."""

    def key_pem(key, encryption=None):
        encryption = encryption or serialization.NoEncryption()
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "strongroom-unit-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = {
        "ca": cert.public_bytes(serialization.Encoding.PEM),
        "cert": cert.public_bytes(serialization.Encoding.PEM),
        "key": key_pem(key),
        "other_key": key_pem(ec.generate_private_key(ec.SECP256R1())),
        "encrypted_key": key_pem(key, serialization.BestAvailableEncryption(b"secret")),
        "not_pem": b"dummy certificate\n",
    }
    paths = {}
    for label, content in files.items():
        paths[label] = tmp_path / f"{label}.pem"
        paths[label].write_bytes(content)
    return {label: str(path) for label, path in paths.items()}


def consul_tls(*lines: str) -> str:
    """A storage "consul" block over https with ``lines`` in it, and a plain listener."""
    body = "".join(f"  {line}\n" for line in lines)
    return f'storage "consul" {{\n  scheme = "https"\n{body}}}\n' + PLAIN


# -- a full, realistic file ----------------------------------------------------


def test_full_configuration_file(tmp_path, tls_files):
    cert, key = tls_files
    path = tmp_path / "strongroom.hcl"
    path.write_text(f'''
# A production node.
ui            = true
disable_mlock = true
api_addr      = "https://sr1.example.com:8200"
cluster_addr  = "https://sr1.example.com:8201"
cluster_name  = "prod"
log_level     = "warn"
workers       = 8
node_id       = "sr1"
default_lease_ttl = "1h"
max_lease_ttl     = "720h"
disable_performance_standby = "false"
raw_storage_endpoint = false
pid_file = "/run/strongroom/strongroom.pid"

storage "consul" {{
  address              = "10.0.0.5:8501"
  scheme               = "https"
  path                 = "/secrets/prod"
  token                = "c0ffee"
  session_ttl          = "10s"
  consistency_mode     = "strong"
  max_parallel         = "64"
  check_timeout        = "250ms"
  disable_registration = "false"
  service              = "strongroom-prod"
  service_tags         = "blue, eu-west"
  service_address      = "10.0.1.1"
}}

listener "tcp" {{
  address          = "0.0.0.0:8200"
  tls_cert_file    = "{cert}"
  tls_key_file     = "{key}"
  max_request_size = 1048576
  telemetry {{
    unauthenticated_metrics_access = true
  }}
}}

listener "tcp" {{
  address     = "127.0.0.1:8210"
  tls_disable = 1
}}

telemetry {{
  prometheus_retention_time = "30s"
  disable_hostname          = true
  usage_gauge_period        = "none"
  maximum_gauge_cardinality = 100
  prefix_filter             = ["+strongroom.core", "-strongroom.expire"]
}}
''')
    config = load(path, hostname=HOST, cpu_count=4)

    assert config.storage == StorageConfig(
        type="consul",
        address="10.0.0.5:8501",
        path="secrets/prod/",
        token="c0ffee",
        scheme="https",
        session_ttl="10s",
        consistency_mode="strong",
        max_parallel=64,
        check_timeout="250ms",
        disable_registration=False,
        service="strongroom-prod",
        service_tags="blue, eu-west",
        service_address="10.0.1.1",
    )
    assert config.storage.service_tag_list == ("blue", "eu-west")
    assert config.storage.session_ttl_seconds == 10.0
    assert config.storage.check_timeout_seconds == 0.25
    assert config.listeners == (
        ListenerConfig(
            address="0.0.0.0:8200",
            tls_cert_file=cert,
            tls_key_file=key,
            max_request_size=1048576,
            unauthenticated_metrics_access=True,
        ),
        ListenerConfig(address="127.0.0.1:8210", tls_disable=True),
    )
    assert config.telemetry == TelemetryConfig(
        prometheus_retention_time="30s",
        usage_gauge_period="none",
        maximum_gauge_cardinality=100,
        prefix_filter=("+strongroom.core", "-strongroom.expire"),
    )
    assert (config.api_addr, config.cluster_addr, config.cluster_name) == (
        "https://sr1.example.com:8200",
        "https://sr1.example.com:8201",
        "prod",
    )
    assert (config.ui, config.disable_mlock, config.log_level, config.workers) == (True, True, "warn", 8)
    assert (config.node_id, config.pid_file) == ("sr1", "/run/strongroom/strongroom.pid")
    assert (config.disable_performance_standby, config.raw_storage_endpoint) == (False, False)
    assert (config.default_lease_ttl_seconds, config.max_lease_ttl_seconds) == (3600, 720 * 3600)


def test_configuration_is_frozen():
    config = parse(MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.workers = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.storage.path = "elsewhere/"


def test_vault_json_form_is_accepted():
    config = parse(
        '{"storage": {"consul": {"path": "sr"}}, '
        '"listener": [{"tcp": {"address": "127.0.0.1:9200", "tls_disable": true}}], "ui": true}'
    )
    assert config.storage.path == "sr/"
    assert config.listeners[0].address == "127.0.0.1:9200"
    assert config.ui is True


# -- defaults ------------------------------------------------------------------


def test_defaults():
    config = parse(MINIMAL, cpu_count=3)
    assert config.storage == StorageConfig(type="consul")
    assert (config.storage.address, config.storage.path, config.storage.session_ttl) == (
        "127.0.0.1:8500",
        "strongroom/",
        "15s",
    )
    assert (config.storage.max_parallel, config.storage.check_timeout, config.storage.service) == (
        128,
        "500ms",
        "strongroom",
    )
    assert config.listeners == (ListenerConfig(address="127.0.0.1:8200", tls_disable=True),)
    assert config.listeners[0].max_request_size == DEFAULT_MAX_REQUEST_SIZE == 33554432
    assert config.telemetry == TelemetryConfig()
    assert (config.telemetry.prometheus_retention_time, config.telemetry.disable_hostname) == ("24h", True)
    assert config.workers == 3  # one per CPU
    assert config.api_addr == "http://127.0.0.1:8200"
    assert config.node_id == "node1-127.0.0.1-8200"
    assert (config.default_lease_ttl, config.max_lease_ttl) == ("768h", "768h")
    assert (config.ui, config.disable_mlock, config.log_level) == (False, True, "info")
    assert (config.cluster_addr, config.cluster_name, config.pid_file) == ("", "", "")
    assert config.disable_performance_standby is False


def test_api_addr_derived_from_first_listener(tls_files):
    cert, key = tls_files
    tls = f'listener "tcp" {{\n address = "127.0.0.2:8300"\n tls_cert_file = "{cert}"\n tls_key_file = "{key}"\n}}\n'
    assert parse(CONSUL + tls + PLAIN).api_addr == "https://127.0.0.2:8300"
    wildcard = 'listener "tcp" {\n address = "0.0.0.0:8200"\n tls_disable = true\n}\n'
    assert parse(CONSUL + wildcard).api_addr == "http://node1:8200"
    ipv6 = 'listener "tcp" {\n address = "[::1]:8200"\n tls_disable = true\n}\n'
    assert parse(CONSUL + ipv6).api_addr == "http://[::1]:8200"


def test_node_ids_differ_for_nodes_sharing_a_host():
    one = parse(CONSUL + 'listener "tcp" {\n address = "127.0.0.2:8200"\n tls_disable = true\n}\n')
    two = parse(CONSUL + 'listener "tcp" {\n address = "127.0.0.3:8200"\n tls_disable = true\n}\n')
    assert one.node_id != two.node_id


def test_max_request_size_zero_is_default_and_negative_disables():
    def size(value):
        return (
            parse(CONSUL + f'listener "tcp" {{\n tls_disable = true\n max_request_size = {value}\n}}\n')
            .listeners[0]
            .max_request_size
        )

    assert size(0) == DEFAULT_MAX_REQUEST_SIZE
    assert size(-5) == -1
    assert size(1024) == 1024


def test_zero_lease_ttls_mean_the_defaults():
    config = parse('default_lease_ttl = 0\nmax_lease_ttl = "0"\n' + MINIMAL)
    assert (config.default_lease_ttl, config.max_lease_ttl) == ("768h", "768h")


def test_read_cache_settings():
    assert parse(MINIMAL).cache_size == 16384 and parse(MINIMAL).disable_cache is False
    config = parse(MINIMAL + 'cache_size = "1000"\ndisable_cache = true\n')
    assert (config.cache_size, config.disable_cache) == (1000, True)
    assert error(MINIMAL + "cache_size = -1\n").key == "cache_size"


def test_json_round_trip_gives_the_same_configuration(tls_files):
    """Workers rebuild the node core's parsed configuration from JSON."""
    cert, key = tls_files
    config = parse(
        CONSUL
        + f'listener "tcp" {{\n  tls_cert_file = "{cert}"\n  tls_key_file = "{key}"\n}}\n'
        + 'listener "tcp" {\n  address = "127.0.0.1:8300"\n  tls_disable = true\n}\n'
        + 'telemetry {\n  prefix_filter = ["+vault.token"]\n}\ncache_size = 7\n'
    )
    assert from_json(to_json(config)) == config


def test_inmem_defaults_to_one_worker():
    config = parse('storage "inmem" {}\n' + PLAIN, cpu_count=16)
    assert config.storage.type == "inmem"
    assert config.workers == 1
    assert parse('workers = 1\nstorage "inmem" {}\n' + PLAIN).workers == 1


# -- telemetry placements ------------------------------------------------------


def test_metrics_access_in_listener_telemetry_block():
    listener = 'listener "tcp" {\n tls_disable = true\n telemetry {\n unauthenticated_metrics_access = true\n }\n}\n'
    assert parse(CONSUL + listener).listeners[0].unauthenticated_metrics_access is True


def test_metrics_access_flat_in_listener():
    listener = 'listener "tcp" {\n tls_disable = true\n unauthenticated_metrics_access = "true"\n}\n'
    assert parse(CONSUL + listener).listeners[0].unauthenticated_metrics_access is True


def test_metrics_access_both_places_is_an_error():
    listener = (
        'listener "tcp" {\n tls_disable = true\n unauthenticated_metrics_access = true\n'
        " telemetry {\n unauthenticated_metrics_access = true\n }\n}\n"
    )
    assert "unauthenticated_metrics_access" in str(error(CONSUL + listener))


def test_listener_telemetry_unknown_key():
    listener = 'listener "tcp" {\n tls_disable = true\n telemetry {\n unauthenticated_pprof = true\n }\n}\n'
    assert str(error(CONSUL + listener)).startswith('listener "tcp".telemetry: unknown key "unauthenticated_pprof"')


# -- durations -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("500ms", 0.5),
        ("10s", 10),
        ("5m", 300),
        ("1h", 3600),
        ("768h", 768 * 3600),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("7d", 7 * 86400),
        ("250us", 0.00025),
        ("3600", 3600),
        (" 42 ", 42),
        ("0", 0),
        ("", 0),
        (90, 90),
        (2.5, 2.5),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["abc", "5 m", "1.5", "10x", "-5s", "-3", "s", "1h-", True, None, [1]])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_invalid_duration_names_the_key():
    err = error('storage "consul" {\n session_ttl = "abc"\n}\n' + PLAIN)
    assert str(err).startswith('storage "consul".session_ttl: invalid duration "abc"')
    assert err.key == 'storage "consul".session_ttl'


def test_session_ttl_within_consul_limits():
    assert "session_ttl: must be between 10s and 24h" in str(
        error('storage "consul" {\n session_ttl = "5s"\n}\n' + PLAIN)
    )


def test_numeric_durations_are_kept_as_seconds():
    config = parse("default_lease_ttl = 60\nmax_lease_ttl = 90.5\n" + MINIMAL)
    assert (config.default_lease_ttl, config.max_lease_ttl) == ("60", "90.5s")
    assert config.max_lease_ttl_seconds == 90.5


# -- validation: every error names the key -------------------------------------


def test_unknown_listener_key():
    err = error(CONSUL + 'listener "tcp" {\n adress = "127.0.0.1:8200"\n tls_disable = true\n}\n')
    assert str(err) == 'listener "tcp": unknown key "adress" (did you mean "address"?)'
    assert err.key == 'listener "tcp".adress'


def test_unknown_storage_key():
    assert str(error('storage "consul" {\n lock_wait_time = "15s"\n}\n' + PLAIN)).startswith(
        'storage "consul": unknown key "lock_wait_time"'
    )
    assert 'storage "inmem": unknown key "path"' in str(error('storage "inmem" {\n path = "x"\n}\n' + PLAIN))


def test_unknown_top_level_key():
    err = error("uii = true\n" + MINIMAL)
    assert str(err) == 'unknown top-level key "uii" (did you mean "ui"?)'
    assert err.key == "uii"


def test_unsupported_vault_keys_are_named():
    assert str(error('ha_storage "consul" {}\n' + MINIMAL)).startswith('top-level key "ha_storage"')
    assert str(error('telemetry {\n statsd_address = "x:8125"\n}\n' + MINIMAL)).startswith(
        "telemetry.statsd_address: not supported"
    )
    assert str(error('telemetry {\n prometheus_retention = "1h"\n}\n' + MINIMAL)).startswith(
        'telemetry: unknown key "prometheus_retention"'
    )


def test_exactly_one_storage_block():
    assert str(error(PLAIN)).startswith("storage: exactly one storage block is required, none found")
    assert "found 2" in str(error(CONSUL + 'storage "inmem" {}\n' + PLAIN))
    assert error(PLAIN).key == "storage"


def test_storage_type_must_be_consul_or_inmem():
    err = error('storage "raft" {\n path = "/var/raft"\n}\n' + PLAIN)
    assert str(err).startswith('storage "raft": unsupported storage type "raft"')


def test_storage_needs_a_label():
    assert str(error('storage {\n address = "x"\n}\n' + PLAIN)).startswith("storage: expected a type label")


def test_at_least_one_listener():
    assert str(error(CONSUL)).startswith('listener: at least one listener "tcp" block is required')


def test_listener_type_must_be_tcp():
    assert str(error(CONSUL + 'listener "unix" {\n address = "/run/sr.sock"\n}\n')).startswith(
        'listener "unix": unsupported listener type'
    )


def test_listener_address_must_be_host_port():
    err = error(CONSUL + 'listener "tcp" {\n address = "localhost"\n tls_disable = true\n}\n')
    assert str(err).startswith('listener "tcp".address: invalid address "localhost"')


def test_duplicate_listener_addresses():
    err = error(CONSUL + PLAIN + PLAIN)
    assert str(err).startswith('listener "tcp" #2.address: "127.0.0.1:8200" is already used by listener "tcp" #1')


def test_inmem_refuses_several_workers():
    err = error('workers = 4\nstorage "inmem" {}\n' + PLAIN)
    assert str(err).startswith('workers: storage "inmem" keeps its data in one process')
    assert err.key == "workers"


def test_workers_at_least_one():
    assert str(error("workers = 0\n" + MINIMAL)) == "workers: must be at least 1, got 0"
    assert str(error('workers = "many"\n' + MINIMAL)) == 'workers: invalid integer "many"'


def test_tls_requires_cert_and_key(tmp_path, tls_files):
    cert, key = tls_files
    err = error(CONSUL + 'listener "tcp" {}\n')
    assert str(err).startswith('listener "tcp".tls_cert_file: required when TLS is enabled')
    err = error(CONSUL + f'listener "tcp" {{\n tls_cert_file = "{cert}"\n}}\n')
    assert str(err).startswith('listener "tcp".tls_key_file: required when TLS is enabled')
    missing = tmp_path / "missing.key"
    err = error(CONSUL + f'listener "tcp" {{\n tls_cert_file = "{cert}"\n tls_key_file = "{missing}"\n}}\n')
    assert str(err) == f'listener "tcp".tls_key_file: file not found: "{missing}"'
    ok = parse(CONSUL + f'listener "tcp" {{\n tls_cert_file = "{cert}"\n tls_key_file = "{key}"\n}}\n')
    assert ok.listeners[0].tls_disable is False


def test_consistency_mode_choices():
    err = error('storage "consul" {\n consistency_mode = "eventual"\n}\n' + PLAIN)
    assert str(err) == (
        'storage "consul".consistency_mode: invalid value "eventual": must be one of "default", "strong"'
    )


def test_max_parallel_positive():
    assert str(error('storage "consul" {\n max_parallel = 0\n}\n' + PLAIN)).startswith(
        'storage "consul".max_parallel: must be at least 1'
    )


@pytest.mark.parametrize(
    "value, expected",
    [
        ("true", True),
        ("false", False),
        ('"true"', True),
        ('"false"', False),
        ("1", True),
        ("0", False),
        ('"1"', True),
        ('"0"', False),
    ],
)
def test_booleans_accept_vault_spellings(value, expected):
    assert parse(f"ui = {value}\n" + MINIMAL).ui is expected


@pytest.mark.parametrize("value", ['"yes"', "2", '"maybe"'])
def test_invalid_boolean_names_the_key(value):
    assert str(error(f"disable_performance_standby = {value}\n" + MINIMAL)).startswith(
        "disable_performance_standby: invalid boolean"
    )


def test_wrong_value_types_name_the_key():
    assert str(error("cluster_name = 12\n" + MINIMAL)) == "cluster_name: expected a string, got 12"
    assert str(error('log_level = "loud"\n' + MINIMAL)).startswith('log_level: invalid value "loud"')
    assert str(error('api_addr = "sr1:8200"\n' + MINIMAL)).startswith('api_addr: invalid URL "sr1:8200"')
    assert str(error('node_id = "node one"\n' + MINIMAL)).startswith('node_id: invalid node id "node one"')
    assert str(error("workers = 2 * 3\n" + MINIMAL)).startswith("workers: expressions are not supported")


def test_default_lease_ttl_above_max():
    err = error('default_lease_ttl = "48h"\nmax_lease_ttl = "24h"\n' + MINIMAL)
    assert str(err).startswith('default_lease_ttl: "48h" exceeds max_lease_ttl "24h"')


def test_check_timeout_minimum():
    assert str(error('storage "consul" {\n check_timeout = "10ms"\n}\n' + PLAIN)).startswith(
        'storage "consul".check_timeout: must be at least 100ms'
    )


# -- storage "consul": TLS to Consul -------------------------------------------


def test_consul_tls_settings(consul_pki):
    config = parse(
        consul_tls(
            f'tls_ca_file = "{consul_pki["ca"]}"',
            f'tls_cert_file = " {consul_pki["cert"]} "',
            f'tls_key_file = "{consul_pki["key"]}"',
            'tls_skip_verify = "false"',
        )
    )
    storage = config.storage
    assert storage.scheme == "https"
    assert (storage.tls_ca_file, storage.tls_cert_file, storage.tls_key_file, storage.tls_skip_verify) == (
        consul_pki["ca"],
        consul_pki["cert"],
        consul_pki["key"],
        False,
    )
    assert parse(consul_tls("tls_skip_verify = true")).storage.tls_skip_verify is True
    # The CA alone (client certificates are optional), and nothing at all: the system's CAs.
    assert parse(consul_tls(f'tls_ca_file = "{consul_pki["ca"]}"')).storage.tls_cert_file == ""
    assert parse(consul_tls()).storage == StorageConfig(type="consul", scheme="https")


def test_consul_tls_defaults():
    storage = parse(MINIMAL).storage
    assert (
        storage.scheme,
        storage.tls_ca_file,
        storage.tls_cert_file,
        storage.tls_key_file,
        storage.tls_skip_verify,
    ) == ("http", "", "", "", False)


def test_https_address_sets_the_consul_scheme(consul_pki):
    def storage(*lines):
        return parse('storage "consul" {\n' + "".join(f"  {line}\n" for line in lines) + "}\n" + PLAIN).storage

    assert storage('address = "https://10.0.0.5:8501"').scheme == "https"
    assert storage('address = "https://10.0.0.5:8501"').address == "https://10.0.0.5:8501"
    assert storage('address = "HTTPS://10.0.0.5:8501"', 'scheme = "https"').scheme == "https"
    assert storage('address = "http://10.0.0.5:8500"').scheme == "http"
    with_ca = storage('address = "https://127.0.0.1:8501"', f'tls_ca_file = "{consul_pki["ca"]}"')
    assert (with_ca.scheme, with_ca.tls_ca_file) == ("https", consul_pki["ca"])
    err = error('storage "consul" {\n  address = "https://10.0.0.5:8501"\n  scheme = "http"\n}\n' + PLAIN)
    assert str(err) == 'storage "consul".scheme: "http" contradicts the address "https://10.0.0.5:8501"'
    assert err.key == 'storage "consul".scheme'
    err = error('storage "consul" {\n  address = "unix:///run/consul.sock"\n}\n' + PLAIN)
    assert str(err).startswith('storage "consul".address: unsupported scheme "unix"')
    assert err.key == 'storage "consul".address'


@pytest.mark.parametrize("setting", ["tls_ca_file", "tls_cert_file", "tls_key_file", "tls_skip_verify"])
def test_consul_tls_settings_need_https(consul_pki, setting):
    """TLS files next to plain HTTP would look secure and send the token in clear: refused."""
    value = "true" if setting == "tls_skip_verify" else f'"{consul_pki["ca"]}"'
    err = error(f'storage "consul" {{\n  address = "10.0.0.5:8500"\n  {setting} = {value}\n}}\n' + PLAIN)
    assert str(err) == (
        f'storage "consul".{setting}: Consul is reached over plain HTTP: set scheme = "https" '
        f"(or an https:// address) to use TLS"
    )
    assert err.key == f'storage "consul".{setting}'
    # Written out at its default value it changes nothing, so it is accepted.
    assert parse(
        'storage "consul" {\n  tls_skip_verify = false\n  tls_ca_file = ""\n}\n' + PLAIN
    ).storage == StorageConfig(type="consul")


def test_consul_tls_cert_and_key_go_together(consul_pki):
    err = error(consul_tls(f'tls_cert_file = "{consul_pki["cert"]}"'))
    assert str(err).startswith('storage "consul".tls_key_file: required with tls_cert_file')
    assert err.key == 'storage "consul".tls_key_file'
    err = error(consul_tls(f'tls_key_file = "{consul_pki["key"]}"'))
    assert str(err).startswith('storage "consul".tls_cert_file: required with tls_key_file')
    assert err.key == 'storage "consul".tls_cert_file'


def test_consul_tls_files_must_exist(consul_pki, tmp_path):
    missing = tmp_path / "absent.pem"
    err = error(consul_tls(f'tls_ca_file = "{missing}"'))
    assert str(err) == f'storage "consul".tls_ca_file: file not found: "{missing}"'
    assert err.key == 'storage "consul".tls_ca_file'
    err = error(consul_tls(f'tls_ca_file = "{tmp_path}"'))
    assert str(err) == f'storage "consul".tls_ca_file: file not found: "{tmp_path}"'
    err = error(consul_tls(f'tls_cert_file = "{missing}"', f'tls_key_file = "{consul_pki["key"]}"'))
    assert str(err) == f'storage "consul".tls_cert_file: file not found: "{missing}"'
    err = error(consul_tls(f'tls_cert_file = "{consul_pki["cert"]}"', f'tls_key_file = "{missing}"'))
    assert str(err) == f'storage "consul".tls_key_file: file not found: "{missing}"'


def test_consul_tls_files_must_hold_what_they_name(consul_pki):
    """Caught at start-up, naming the key, rather than as an ssl error in every worker."""
    ca, cert, key = consul_pki["ca"], consul_pki["cert"], consul_pki["key"]
    for line, bad in [
        (f'tls_ca_file = "{consul_pki["not_pem"]}"', "tls_ca_file"),
        (f'tls_ca_file = "{key}"', "tls_ca_file"),
    ]:
        err = error(consul_tls(line))
        assert str(err).startswith(f'storage "consul".{bad}: no PEM certificate in ')
        assert err.key == f'storage "consul".{bad}'
    err = error(consul_tls(f'tls_ca_file = "{ca}"', f'tls_cert_file = "{key}"', f'tls_key_file = "{key}"'))
    assert err.key == 'storage "consul".tls_cert_file'
    err = error(consul_tls(f'tls_cert_file = "{cert}"', f'tls_key_file = "{consul_pki["other_key"]}"'))
    assert str(err).startswith(
        f'storage "consul".tls_key_file: "{consul_pki["other_key"]}" is not the PEM '
        f"private key of tls_cert_file (key values mismatch)"
    )
    err = error(consul_tls(f'tls_cert_file = "{cert}"', f'tls_key_file = "{consul_pki["not_pem"]}"'))
    assert err.key == 'storage "consul".tls_key_file'
    # An encrypted key is refused without asking for a passphrase on the terminal.
    err = error(consul_tls(f'tls_cert_file = "{cert}"', f'tls_key_file = "{consul_pki["encrypted_key"]}"'))
    assert str(err) == (
        f'storage "consul".tls_key_file: "{consul_pki["encrypted_key"]}" is encrypted: '
        f"Strongroom needs an unencrypted key"
    )


def test_consul_tls_invalid_values_name_the_key(consul_pki):
    assert str(error(consul_tls('tls_skip_verify = "sometimes"'))).startswith(
        'storage "consul".tls_skip_verify: invalid boolean "sometimes"'
    )
    assert str(error(consul_tls("tls_ca_file = 5"))) == 'storage "consul".tls_ca_file: expected a string, got 5'
    assert str(error(consul_tls('tls_ca_fil = "x"'))).startswith(
        'storage "consul": unknown key "tls_ca_fil" (did you mean "tls_ca_file"?)'
    )
    assert 'storage "inmem": unknown key "tls_ca_file"' in str(
        error(f'storage "inmem" {{\n  tls_ca_file = "{consul_pki["ca"]}"\n}}\n' + PLAIN)
    )


def test_json_round_trip_keeps_consul_tls_settings(consul_pki):
    config = parse(
        consul_tls(
            f'tls_ca_file = "{consul_pki["ca"]}"',
            f'tls_cert_file = "{consul_pki["cert"]}"',
            f'tls_key_file = "{consul_pki["key"]}"',
            "tls_skip_verify = true",
        )
    )
    assert from_json(to_json(config)) == config
    assert from_json(to_json(config)).storage.tls_skip_verify is True


def test_make_backend_passes_the_consul_tls_settings(consul_pki):
    """The settings reach the Consul client the backend uses (nothing connects here)."""
    from strongroom.server.build import make_backend

    def client_settings(text: str) -> tuple:
        backend = make_backend(parse(text))
        http = backend.client.http
        backend.close()
        return http.base_uri, http.verify, http.cert

    ca, cert, key = consul_pki["ca"], consul_pki["cert"], consul_pki["key"]
    assert client_settings(
        consul_tls(
            'address = "127.0.0.1:8501"',
            f'tls_ca_file = "{ca}"',
            f'tls_cert_file = "{cert}"',
            f'tls_key_file = "{key}"',
        )
    ) == ("https://127.0.0.1:8501", ca, (cert, key))
    assert client_settings(consul_tls('address = "https://127.0.0.1:8501"', "tls_skip_verify = true")) == (
        "https://127.0.0.1:8501",
        False,
        None,
    )
    assert client_settings(MINIMAL) == ("http://127.0.0.1:8500", True, None)


def test_syntax_error_names_the_source():
    assert str(error("ui = = true\n", source="/etc/strongroom.hcl")).startswith(
        "/etc/strongroom.hcl: invalid HCL: unexpected input at line 1"
    )


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load(tmp_path / "absent.hcl")


def test_string_values_keep_inner_quotes():
    assert parse('cluster_name = "a \\"quoted\\" name"\n' + MINIMAL).cluster_name == 'a "quoted" name'


def test_quotes_from_older_python_hcl2_are_stripped():
    # Some python-hcl2 releases return '"consul"' and '"x"'; loads() detects that once.
    raw = {"storage": [{'"consul"': {"path": '"sr/"'}}], "cluster_name": '"prod"'}
    assert _clean(raw, wraps_strings=True) == {"storage": [{"consul": {"path": "sr/"}}], "cluster_name": "prod"}
    assert _clean({"cluster_name": '"prod"'}, wraps_strings=False) == {"cluster_name": '"prod"'}


# -- dev mode ------------------------------------------------------------------


def test_dev_config():
    config = dev_config("127.0.0.1:8299", hostname=HOST)
    assert config.storage == StorageConfig(type="inmem")
    assert config.listeners == (ListenerConfig(address="127.0.0.1:8299", tls_disable=True),)
    assert config.workers == 1
    assert config.api_addr == "http://127.0.0.1:8299"
    assert config.node_id == "node1-127.0.0.1-8299"
    assert dev_config().listeners[0].address == "127.0.0.1:8200"


def test_dev_config_rejects_a_bad_address():
    with pytest.raises(ConfigError, match="invalid address"):
        dev_config("nowhere")


# -- audit devices (declarative, OpenBao's audit blocks) ----------------------------


def audit_block(
    label: str = "to-file", options: str = 'file_path = "/var/log/strongroom/audit.log"', body: str = ""
) -> str:
    return f'audit "file" "{label}" {{\n{body}  options {{\n    {options}\n  }}\n}}\n'


def test_audit_blocks_are_parsed_in_order():
    config = parse(
        MINIMAL
        + 'audit_file_directory = "/var/log/strongroom/"\n'
        + audit_block(
            body='  description = "the audit log"\n  local = true\n',
            options='file_path = "/var/log/strongroom/audit.log"\n    log_raw = true\n    mode = "0640"',
        )
        + audit_block("out", 'file_path = "stdout"')
    )
    first, second = config.audit
    assert (first.type, first.path, first.description, first.local) == ("file", "to-file/", "the audit log", True)
    assert first.options_dict == {"file_path": "/var/log/strongroom/audit.log", "log_raw": "true", "mode": "0640"}
    assert (second.path, second.options_dict) == ("out/", {"file_path": "stdout"})
    assert config.audit_file_directory == "/var/log/strongroom"
    assert from_json(to_json(config)) == config  # workers and the node core see the same devices


def test_audit_defaults_refuse_api_creation_and_declare_nothing():
    config = parse(MINIMAL)
    assert (config.audit, config.unsafe_allow_api_audit_creation, config.audit_file_directory) == ((), False, "")
    assert parse(MINIMAL + "unsafe_allow_api_audit_creation = true\n").unsafe_allow_api_audit_creation is True


def test_server_config_reaches_the_core():
    from strongroom.server.build import core_config

    config = parse(
        MINIMAL
        + 'unsafe_allow_api_audit_creation = true\naudit_file_directory = "/srv/audit"\n'
        + audit_block(options='file_path = "/srv/audit/a.log"')
    )
    core = core_config(config)
    assert core.unsafe_allow_api_audit_creation is True
    assert core.audit_file_directory == "/srv/audit"
    assert core.audit_devices == config.audit and core.audit_devices[0].path == "to-file/"


@pytest.mark.parametrize("options", ["log_raw = true", 'file_path = ""'])
def test_audit_file_path_is_required(options):
    err = error(MINIMAL + audit_block(options=options))
    assert str(err) == 'audit "file" "to-file".options.file_path: required for a file audit device'
    assert err.key == 'audit "file" "to-file".options.file_path'


@pytest.mark.parametrize(
    "file_path",
    [
        "/etc/shadow",
        "/var/log/strongroom/../../etc/shadow",
        "/var/log/strongroom/a/../audit.log",
        "/var/log/strongroomx/audit.log",
        "/var/log/strongroom",
        "audit.log",
    ],
)
def test_audit_file_path_outside_audit_file_directory(file_path):
    err = error(
        MINIMAL + 'audit_file_directory = "/var/log/strongroom"\n' + audit_block(options=f'file_path = "{file_path}"')
    )
    assert "outside audit_file_directory" in str(err) and '"/var/log/strongroom"' in str(err)
    assert str(err).startswith('audit "file" "to-file".options.file_path')


def test_stdout_and_discard_are_allowed_with_audit_file_directory():
    config = parse(
        MINIMAL
        + 'audit_file_directory = "/var/log/strongroom"\n'
        + audit_block("a", 'file_path = "stdout"')
        + audit_block("b", 'file_path = "discard"')
    )
    assert [device.path for device in config.audit] == ["a/", "b/"]


def test_audit_paths_are_unique():
    err = error(MINIMAL + audit_block("x") + audit_block("x/", 'file_path = "discard"'))
    assert "already used by another audit block" in str(err)


def test_audit_file_directory_must_be_absolute():
    err = error(MINIMAL + 'audit_file_directory = "var/log/strongroom"\n')
    assert err.key == "audit_file_directory"
    assert "must be an absolute directory" in str(err)


@pytest.mark.parametrize(
    "block, message",
    [
        (
            'audit "socket" "x" {\n  options {\n    address = "127.0.0.1:9090"\n  }\n}\n',
            "unsupported audit device type",
        ),
        (audit_block("x", body='  format = "json"\n'), 'unknown key "format"'),
        (audit_block("a/../b"), "invalid audit device path"),
    ],
)
def test_bad_audit_blocks_name_the_block(block, message):
    err = error(MINIMAL + block)
    assert message in str(err) and str(err).startswith('audit "')


def test_vaults_deprecated_backend_block_is_read_as_storage_with_a_warning():
    config = parse('backend "consul" {\n  address = "10.0.0.5:8500"\n  path = "old/"\n}\n' + PLAIN)
    assert (config.storage.type, config.storage.address, config.storage.path) == ("consul", "10.0.0.5:8500", "old/")
    assert config.warnings == (BACKEND_WARNING,)
    assert from_json(to_json(config)).warnings == (BACKEND_WARNING,)
    assert parse(MINIMAL).warnings == ()
    both = error('backend "consul" {}\n' + MINIMAL)
    assert 'set "storage" or the deprecated "backend", not both' in str(both)


def test_server_check_shows_the_backend_warning(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "node.hcl"
    path.write_text('backend "inmem" {}\n' + PLAIN)
    strongroom = Path(sys.executable).parent / "strongroom"
    done = subprocess.run([str(strongroom), "server", "-config", str(path), "-check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "configuration is valid" in done.stdout and BACKEND_WARNING in done.stderr


def test_cluster_ca_file_is_read_as_a_pem_bundle(tmp_path):
    """The CA that verifies the active node when a standby forwards (TLS listeners)."""
    assert parse(MINIMAL).cluster_ca_file == ""
    bundle = CertificateAuthority(tmp_path / "pki").ca_file
    assert parse(MINIMAL + f'cluster_ca_file = "{bundle}"\n').cluster_ca_file == str(bundle)
    (tmp_path / "junk.pem").write_text("not a certificate")
    assert error(MINIMAL + f'cluster_ca_file = "{tmp_path / "junk.pem"}"\n').key == "cluster_ca_file"


@pytest.mark.parametrize(
    "extra, storage, settle",
    [
        ("", CONSUL, "SETTLE"),
        ("disable_performance_standby = true\n", CONSUL, 0.0),
        ("", 'storage "inmem" {}\n', 0.0),
    ],
)
def test_revocations_wait_for_standbys_only_where_standbys_follow(extra, storage, settle):
    from strongroom.server.build import core_config
    from strongroom.storage.changes import FOLLOW_LEASE, SETTLE

    core = core_config(parse(storage + PLAIN + extra))
    assert core.revocation_settle == (SETTLE if settle == "SETTLE" else settle)
    assert SETTLE > FOLLOW_LEASE
