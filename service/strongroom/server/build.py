"""Building the pieces of a node from its configuration (shared by the node
core and the workers, so both see the same storage the same way)."""

from __future__ import annotations

from strongroom.config import ServerConfig, parse_duration
from strongroom.core.core import CoreConfig
from strongroom.storage.instrumented import InstrumentedBackend


def make_backend(config: ServerConfig, fence=None, on_lock_lost=None):
    """The storage backend the configuration names."""
    storage = config.storage
    if storage.type == "inmem":
        from strongroom.storage.inmem import InmemBackend

        return InstrumentedBackend(InmemBackend(), "inmem")
    from strongroom.storage.consul import ConsulBackend

    return InstrumentedBackend(ConsulBackend.from_config(
        address=storage.address,
        token=storage.token,
        scheme=storage.scheme,
        prefix=storage.path,
        consistency_mode=storage.consistency_mode,
        max_parallel=storage.max_parallel,
        fence=fence,
        on_lock_lost=on_lock_lost,
    ), "consul")


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
    )
