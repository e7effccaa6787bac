"""Building the pieces of a node from its configuration (shared by the node
core and the workers, so both see the same storage the same way)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from strongroom.config import ServerConfig
from strongroom.core.core import CoreConfig
from strongroom.core.sys_recovery import GENERATE_ROOT_PATHS, REKEY_PATHS
from strongroom.storage import Backend
from strongroom.storage.changes import SETTLE
from strongroom.storage.instrumented import InstrumentedBackend

if TYPE_CHECKING:
    from strongroom.storage.coherence import CoherenceTable
    from strongroom.storage.consul import ConsulBackend
    from strongroom.storage.consul_batch import CommitTurns


def make_backend(
    config: ServerConfig,
    fence: Callable[[], tuple[str, str] | None] | None = None,
    on_lock_lost: Callable[[], None] | None = None,
    cache_table: CoherenceTable | None = None,
    cache_size: int = 0,
) -> Backend:
    """The storage backend the configuration names; with ``cache_table`` (the
    node's ``CoherenceTable``) wrapped in a ``CachedBackend`` of ``cache_size``
    entries (0: writes are announced, nothing is cached)."""
    if config.storage.type == "inmem":
        from strongroom.storage.inmem import InmemBackend

        return InstrumentedBackend(InmemBackend(), "inmem")
    # The workers of a node (one cache table) take turns to commit (storage/consul_batch.py).
    consul = consul_backend(config, fence, on_lock_lost, commit_turns=cache_table)
    return wrap_consul(config, consul, cache_table, cache_size)


def consul_backend(
    config: ServerConfig,
    fence: Callable[[], tuple[str, str] | None] | None = None,
    on_lock_lost: Callable[[], None] | None = None,
    commit_turns: CommitTurns | None = None,
) -> ConsulBackend:
    """The bare Consul backend the configuration names: what the node core's
    sessions, registry and watches share (one client, one index), before
    ``wrap_consul`` instruments (and caches) it; with ``commit_turns`` it takes
    turns with the node's other processes to send transactions."""
    from strongroom.storage.consul import ConsulBackend

    storage = config.storage
    return ConsulBackend.from_config(
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
        commit_turns=commit_turns,
    )


def wrap_consul(
    config: ServerConfig, consul: ConsulBackend, cache_table: CoherenceTable | None = None, cache_size: int = 0
) -> Backend:
    """``consul`` instrumented; with ``cache_table`` (the node's ``CoherenceTable``)
    also wrapped in a ``CachedBackend`` of ``cache_size`` entries (0: writes are
    announced, nothing is cached)."""
    backend = InstrumentedBackend(consul, "consul")
    if cache_table is None:
        return backend
    from strongroom.storage.cache import CachedBackend
    from strongroom.storage.coherence import caching_supported

    caching = caching_supported() and not config.disable_cache
    return CachedBackend(backend, cache_table, cache_size if caching else 0)


def core_config(config: ServerConfig) -> CoreConfig:
    """The subset of the server configuration the core needs."""
    listener = config.listeners[0]
    return CoreConfig(
        default_lease_ttl=int(config.default_lease_ttl_seconds),
        max_lease_ttl=int(config.max_lease_ttl_seconds),
        cluster_name=config.cluster_name,
        storage_type=config.storage.type,
        unauthenticated_metrics_access=bool(listener.unauthenticated_metrics_access),
        unauthenticated_sys_paths=frozenset(
            (() if listener.disable_unauthed_rekey_endpoints else REKEY_PATHS)
            + (() if listener.disable_unauthed_generate_root_endpoints else GENERATE_ROOT_PATHS)
        ),
        unsafe_allow_api_audit_creation=config.unsafe_allow_api_audit_creation,
        audit_file_directory=config.audit_file_directory,
        audit_devices=config.audit,
        # Performance standbys follow the change log of Consul storage (storage/changes.py).
        revocation_settle=SETTLE if config.storage.type == "consul" and not config.disable_performance_standby else 0.0,
    )
