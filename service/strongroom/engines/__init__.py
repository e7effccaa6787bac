"""Secrets engines: what a mount under ``/v1/<mount>/`` runs.

An engine implements ``strongroom.sdk.logical.Engine``: ``handle(req)``,
``exists(req)`` and ``unauthenticated_paths()``.  It is built per mount by
``create_engine`` from the mount's type and options, over the mount's storage
view (the barrier seen through ``logical/<mount-uuid>/``) and the node's clock.

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

from collections.abc import Callable
from functools import partial

from strongroom.engines.kv import new_kv
from strongroom.errors import InvalidRequest
from strongroom.sdk.logical import Engine

# mount type -> factory(options, view, clock); ``generic`` is Vault's old name for kv.
ENGINE_TYPES: dict[str, Callable[..., Engine]] = {
    "kv": partial(new_kv, mount_type="kv"),
    "generic": partial(new_kv, mount_type="generic"),
}


def create_engine(mount_type: str, options: dict | None, view, clock: Callable) -> Engine:
    """The engine for a mount of ``mount_type`` with ``options`` over storage ``view``.

    ``clock`` is a zero-argument callable returning an aware UTC datetime.
    Raises ``InvalidRequest`` for an unknown type (Vault's
    ``plugin not found in the catalog: <type>``) or invalid options.
    """
    factory = ENGINE_TYPES.get(mount_type)
    if factory is None:
        raise InvalidRequest(f"plugin not found in the catalog: {mount_type}")
    return factory(options or {}, view, clock)
