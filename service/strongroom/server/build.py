"""Building the pieces of a node from its configuration (shared by the node
core and the workers, so both see the same storage the same way)."""

from __future__ import annotations

from strongroom.config import ServerConfig, parse_duration
from strongroom.core.core import CoreConfig
from strongroom.storage.instrumented import InstrumentedBackend


def make_backend(config: ServerConfig, fence=None, on_lock_lost=None, cache_table=None, cache_size: int = 0):
    """The storage backend the configuration names; with ``cache_table`` (the
    node's ``CoherenceTable``) wrapped in a ``CachedBackend`` of ``cache_size``
    entries (0: writes are announced, nothing is cached)."""
    storage = config.storage
    if storage.type == "inmem":
        from strongroom.storage.inmem import InmemBackend

        return InstrumentedBackend(InmemBackend(), "inmem")
    from strongroom.storage.consul import ConsulBackend

    backend = InstrumentedBackend(
        ConsulBackend.from_config(
            address=storage.address,
            token=storage.token,
            scheme=storage.scheme,
            tls_ca_file=storage.tls_ca_file or None,
            tls_cert_file=storage.tls_cert_file or None,
            tls_key_file=storage.tls_key_file or None,
            tls_skip_verify=storage.tls_skip_verify,
            tls_min_version=storage.tls_min_version,
            prefix=storage.path,
            consistency_mode=storage.consistency_mode,
            max_parallel=storage.max_parallel,
            fence=fence,
            on_lock_lost=on_lock_lost,
        ),
        "consul",
    )
    if cache_table is None:
        return backend
    from strongroom.storage.cache import CachedBackend
    from strongroom.storage.coherence import caching_supported

    caching = caching_supported() and not config.disable_cache
    return CachedBackend(backend, cache_table, cache_size if caching else 0)


def seconds(value) -> int:
    """A duration from the configuration as whole seconds."""
    return int(value) if isinstance(value, (int, float)) else int(parse_duration(value))


def core_config(config: ServerConfig) -> CoreConfig:
    """The subset of the server configuration the core needs."""
    listener = config.listeners[0]
    return CoreConfig(
        default_lease_ttl=seconds(config.default_lease_ttl),
        max_lease_ttl=seconds(config.max_lease_ttl),
        cluster_name=config.cluster_name or "strongroom-cluster",
        storage_type=config.storage.type,
        unauthenticated_metrics_access=bool(listener.unauthenticated_metrics_access),
        unsafe_allow_api_audit_creation=config.unsafe_allow_api_audit_creation,
        audit_file_directory=config.audit_file_directory,
        audit_devices=config.audit,
    )
