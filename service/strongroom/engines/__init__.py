"""Secrets engines: what a mount under ``/v1/<mount>/`` runs.

An engine implements ``strongroom.sdk.logical.Engine``: ``handle(req)``,
``exists(req)`` and ``unauthenticated_paths()``.  ``ENGINE_TYPES`` is the
catalog of built-in types (name -> ``EngineType``: a factory and a check of a
mount's options); the server wiring hands it to the core, which builds one
engine per mount over the mount's storage view (the barrier seen through
``logical/<mount-uuid>/``) and the node's clock, and never imports this package
(Vault's ``CoreConfig.LogicalBackends``).

Invariants every engine keeps:

* stateless apart from storage: several processes serve the same mount over the
  same storage, so nothing another process could change is kept in memory
  between requests;
* every change touching more than one storage key is one ``txn``;
* every read-modify-write is optimistic: read with ``get_with_index`` (or
  ``get_prefix``, which carries modify indexes too), commit
  with a ``check-index`` / ``check-not-exists`` on what was read, and on
  ``WriteConflict`` run the whole operation again (bounded; then
  ``StorageUnavailable``).  In-process locks only reduce conflicts: other
  workers and nodes do not share them.  ``WriteConflict`` never leaves an engine;
* errors are those of ``strongroom.errors``; storage errors (``RequestTooLarge``,
  ``ReadOnly``, ``LockLost``...) propagate unchanged;
* a response to a write carries the storage index (``Response.index``) for
  ``X-Vault-Index``.

https://developer.hashicorp.com/vault/docs/secrets
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from strongroom.engines.kv import kv_version, new_kv
from strongroom.engines.transit import check_options as transit_options
from strongroom.engines.transit import new_transit
from strongroom.sdk.logical import Clock, Engine, EngineCatalog, EngineType
from strongroom.storage import Backend


def _kv(mount_type: str) -> EngineType:
    return EngineType(
        factory=partial(new_kv, mount_type=mount_type),
        check_options=partial(kv_version, mount_type=mount_type),
    )


#: The built-in mount types; ``generic`` is Vault's old name for kv.
ENGINE_TYPES: Mapping[str, EngineType] = {
    "kv": _kv("kv"),
    "generic": _kv("generic"),
    "transit": EngineType(factory=new_transit, check_options=transit_options),
}


def create_engine(mount_type: str, options: Mapping[str, Any] | None, view: Backend, clock: Clock) -> Engine:
    """The engine for a mount of ``mount_type`` with ``options`` over storage ``view``.

    Raises ``InvalidRequest`` for an unknown type (Vault's
    ``plugin not found in the catalog: <type>``) or invalid options."""
    return EngineCatalog(ENGINE_TYPES).create(mount_type, options, view, clock)
