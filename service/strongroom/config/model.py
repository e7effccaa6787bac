"""The typed configuration: frozen dataclasses, and their JSON form for workers.

``to_json``/``from_json`` hand the validated ``ServerConfig`` to worker
processes, which therefore never parse HCL (nor import python-hcl2/lark).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from strongroom.config.values import parse_duration

DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024


# -- the typed configuration -------------------------------------------------


# Vault's system default for default_lease_ttl and max_lease_ttl (32 days).
SYSTEM_LEASE_TTL = "768h"
SYSTEM_LEASE_TTL_SECONDS = 768 * 3600


@dataclass(frozen=True)
class StorageConfig:
    """``storage "consul" { ... }`` or ``storage "inmem" {}``; Consul is also the
    HA backend (lock, sessions, service registration).

    https://developer.hashicorp.com/vault/docs/configuration/storage/consul"""

    type: str
    address: str = "127.0.0.1:8500"
    path: str = "strongroom/"
    token: str = ""
    scheme: str = "http"
    session_ttl: str = "15s"
    consistency_mode: str = "default"
    max_parallel: int = 128
    check_timeout: str = "500ms"
    disable_registration: bool = False
    service: str = "strongroom"
    service_tags: str = ""
    service_address: str = ""
    # TLS to Consul (scheme "https" only): empty tls_ca_file means the system's CAs.
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_skip_verify: bool = False
    tls_min_version: str = "tls12"  # Vault's values: tls10, tls11, tls12, tls13

    @property
    def session_ttl_seconds(self) -> float:
        """``session_ttl`` in seconds."""
        return parse_duration(self.session_ttl)

    @property
    def check_timeout_seconds(self) -> float:
        """``check_timeout`` in seconds."""
        return parse_duration(self.check_timeout)

    @property
    def service_tag_list(self) -> tuple[str, ...]:
        """``service_tags`` (comma-separated, as in Vault) as a tuple."""
        return tuple(tag.strip() for tag in self.service_tags.split(",") if tag.strip())


@dataclass(frozen=True)
class ListenerConfig:
    """``listener "tcp" { ... }``.

    ``max_request_size`` follows Vault: unset or 0 means 32 MiB, a negative
    value turns the limit off and is stored as -1 (the API reads <= 0 as "no
    limit").  https://developer.hashicorp.com/vault/docs/configuration/listener/tcp"""

    type: str = "tcp"
    address: str = "127.0.0.1:8200"
    tls_disable: bool = False
    tls_cert_file: str = ""
    tls_key_file: str = ""
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE
    unauthenticated_metrics_access: bool = False
    # OpenBao's names: false serves sys/rekey/* and sys/generate-root/* without a token, as Vault does.
    disable_unauthed_rekey_endpoints: bool = True
    disable_unauthed_generate_root_endpoints: bool = True
    # Vault 1.20.3's bounds on a JSON request body (0 or less: no bound), checked before it is parsed.
    max_json_depth: int = 300
    max_json_string_value_length: int = 1024 * 1024
    max_json_object_entry_count: int = 10000
    max_json_array_element_count: int = 10000
    max_json_token: int = 500000  # Vault 2.0: strings, numbers, brackets and commas of one body
    # How long a client may take to send its request headers, and its whole request ("0": no limit).
    http_read_header_timeout: str = "10s"
    http_read_timeout: str = "30s"

    @property
    def http_read_header_timeout_seconds(self) -> float:
        """``http_read_header_timeout`` in seconds (0: no limit)."""
        return parse_duration(self.http_read_header_timeout)

    @property
    def http_read_timeout_seconds(self) -> float:
        """``http_read_timeout`` in seconds (0: no limit)."""
        return parse_duration(self.http_read_timeout)


@dataclass(frozen=True)
class TelemetryConfig:
    """The top-level ``telemetry { ... }`` block: Vault's common keys.  Strongroom
    exports Prometheus only, so sinks (statsd, circonus, ...) are refused.

    https://developer.hashicorp.com/vault/docs/configuration/telemetry"""

    prometheus_retention_time: str = "24h"
    disable_hostname: bool = True
    usage_gauge_period: str = "10m"  # "none" turns the usage gauges off
    maximum_gauge_cardinality: int = 500
    enable_hostname_label: bool = False
    lease_metrics_epsilon: str = "1h"
    num_lease_metrics_buckets: int = 168
    add_lease_metrics_namespace_labels: bool = False
    filter_default: bool = True
    prefix_filter: tuple[str, ...] = ()
    # Strongroom's own key: sys/metrics also carries Vault's metric names (vault_core_unsealed, ...).
    vault_metric_names: bool = True


@dataclass(frozen=True)
class AuditDeviceConfig:
    """``audit "file" "<path>" { description, local, options { ... } }``: an audit
    device declared in the configuration (OpenBao's declarative audit devices),
    enabled by the active node at start.  ``options`` is a tuple of (key, value)
    string pairs so that the configuration stays hashable and frozen.

    https://openbao.org/docs/configuration/audit"""

    type: str
    path: str
    description: str = ""
    local: bool = False
    options: tuple[tuple[str, str], ...] = ()

    @property
    def options_dict(self) -> dict[str, str]:
        """``options`` as a dict."""
        return dict(self.options)


@dataclass(frozen=True)
class TransitSealConfig:
    """``seal "transit" { ... }``: auto-unseal with another Vault-API server's
    transit key (``core.seal_transit``).  Unset keys may come from the
    environment (``VAULT_ADDR``, ``VAULT_TOKEN``, ...), resolved when the node
    core builds the seal, so the values here are what the file says.

    https://developer.hashicorp.com/vault/docs/configuration/seal/transit"""

    address: str = ""
    token: str = ""
    key_name: str = ""
    mount_path: str = ""
    namespace: str = ""
    disable_renewal: bool = False
    tls_ca_cert: str = ""
    tls_client_cert: str = ""
    tls_client_key: str = ""
    tls_server_name: str = ""
    tls_skip_verify: bool = False


@dataclass(frozen=True)
class ServerConfig:
    """The whole server configuration, as ``load``/``loads`` return it: every
    default filled in (``api_addr``, ``node_id``, ``workers``) and validated.

    https://developer.hashicorp.com/vault/docs/configuration"""

    storage: StorageConfig
    listeners: tuple[ListenerConfig, ...]
    api_addr: str = ""
    cluster_addr: str = ""
    cluster_name: str = ""
    # CA bundle (PEM) that verifies the other nodes' api_addr certificates when a
    # standby forwards a request to the active node; empty: the system's CAs.
    cluster_ca_file: str = ""
    ui: bool = False
    disable_mlock: bool = True  # accepted for Vault compatibility; Strongroom never mlocks
    log_level: str = "info"
    workers: int = 1
    disable_performance_standby: bool = False
    default_lease_ttl: str = SYSTEM_LEASE_TTL
    max_lease_ttl: str = SYSTEM_LEASE_TTL
    node_id: str = ""
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    raw_storage_endpoint: bool = False
    pid_file: str = ""
    # After sys/step-down the node stays out of the election this long, so another node wins.
    step_down_holdoff: str = "2s"
    # The active node's per-worker read cache, in entries (Vault's setting); see storage/cache.py.
    cache_size: int = 16384
    disable_cache: bool = False
    # Audit devices: those declared here, and whether sys/audit may create more (CVE-2025-6000 class:
    # an API-created file device writes as the server's user wherever file_path points).
    audit: tuple[AuditDeviceConfig, ...] = ()
    unsafe_allow_api_audit_creation: bool = False
    # When set, every file audit device's file_path must lie in this directory.
    audit_file_directory: str = ""
    # seal "transit" { ... }; None: the Shamir seal (unseal keys).
    seal: TransitSealConfig | None = None
    # What the file says in a deprecated way (Vault's top-level "backend" block): shown at start.
    warnings: tuple[str, ...] = ()

    @property
    def default_lease_ttl_seconds(self) -> float:
        """``default_lease_ttl`` in seconds."""
        return parse_duration(self.default_lease_ttl)

    @property
    def max_lease_ttl_seconds(self) -> float:
        """``max_lease_ttl`` in seconds."""
        return parse_duration(self.max_lease_ttl)


# -- handing the configuration to workers ------------------------------------


def to_json(config: ServerConfig) -> str:
    """The validated configuration as JSON, for ``from_json`` in another process."""
    return json.dumps(asdict(config))


def from_json(text: str) -> ServerConfig:
    """What ``to_json`` wrote, as the same ``ServerConfig`` (no validation: it was validated)."""
    doc = json.loads(text)
    telemetry = doc["telemetry"]
    return ServerConfig(
        **{
            **doc,
            "storage": StorageConfig(**doc["storage"]),
            "listeners": tuple(ListenerConfig(**listener) for listener in doc["listeners"]),
            "telemetry": TelemetryConfig(**{**telemetry, "prefix_filter": tuple(telemetry["prefix_filter"])}),
            "warnings": tuple(doc.get("warnings", ())),
            "audit": tuple(
                AuditDeviceConfig(**{**device, "options": tuple(tuple(pair) for pair in device["options"])})
                for device in doc.get("audit", ())
            ),
            "seal": TransitSealConfig(**doc["seal"]) if doc.get("seal") else None,
        }
    )
