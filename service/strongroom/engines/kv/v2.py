"""KV version 2: versioned secrets (Vault's ``versionedKVBackend``).

https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2

Paths inside the mount: ``config``, ``data/<path>``, ``metadata/<path>``,
``delete/<path>``, ``undelete/<path>``, ``destroy/<path>``, ``subkeys/<path>``.
Anything else answers 404 with Vault's warning (not an error) so the CLI and
UI can tell a KV v1 path was used on a v2 mount.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable

from strongroom.engines.kv.base import KVBackend
from strongroom.engines.kv.path_config import ConfigPath
from strongroom.engines.kv.path_data import DataPath
from strongroom.engines.kv.path_delete import DeletePath, DestroyPath, UndeletePath
from strongroom.engines.kv.path_metadata import MetadataPath
from strongroom.engines.kv.path_subkeys import SubkeysPath
from strongroom.engines.kv.store import FOLDER_BUDGET, VersionedStore
from strongroom.sdk import logical
from strongroom.sdk.logical import Clock, Request, Response
from strongroom.storage import Backend
from strongroom.storage.retry import PATIENCE

_ROOTS = ("metadata", "data", "delete", "undelete", "destroy")
_ROOT_WARNING = "Non-listing operations on the root of a K/V v2 mount are not supported."
_SUBCOMMANDS = {
    logical.CREATE: "put",
    logical.UPDATE: "put",
    logical.PATCH: "patch",
    logical.READ: "get",
    logical.LIST: "list",
    logical.DELETE: "delete",
}


class KVv2(KVBackend):
    """The ``Engine`` of a ``kv`` mount with ``options.version == "2"``.

    ``view`` is the mount's storage view and ``clock`` returns an aware UTC
    datetime; ``rand`` and ``sleep`` pace retries after write conflicts,
    ``patience`` bounds them in time (``storage.retry``) and ``folder_budget``
    bounds the version data read with every request (see ``VersionedStore``).
    Stateless apart from storage: config and metadata are read by every
    request, and every read-modify-write is checked in storage, so any number
    of processes may serve the same mount.
    """

    def __init__(
        self,
        view: Backend,
        clock: Clock,
        *,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
        patience: float = PATIENCE,
        folder_budget: int = FOLDER_BUDGET,
    ):
        self.store = VersionedStore(view, clock, rand=rand, sleep=sleep, patience=patience, folder_budget=folder_budget)
        groups = (ConfigPath, DataPath, MetadataPath, DeletePath, UndeletePath, DestroyPath, SubkeysPath)
        super().__init__([group(self.store).path() for group in groups], on_unsupported_path=_invalid_path)

    def handle(self, req: Request) -> Response | None:
        """Route ``req`` to its path group; 405 for an operation the group lacks."""
        if req.operation == logical.LIST and req.relative_path and not req.relative_path.endswith("/"):
            # Vault's HTTP layer lists folders: LIST metadata/a is LIST metadata/a/.
            req = dataclasses.replace(req, relative_path=req.relative_path + "/")
        return super().handle(req)


def _invalid_path(req: Request) -> Response:
    """Vault's answer to a path outside the table: 404 with a warning (not an
    error), so the CLI and UI can tell a KV v1 path was used on a v2 mount."""
    if req.relative_path in _ROOTS:
        return Response(status=404, warnings=[_ROOT_WARNING])
    subcommand = _SUBCOMMANDS.get(req.operation, req.operation)
    return Response(
        status=404,
        warnings=[
            "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
            f"endpoints to use. If using the Vault CLI, use 'vault kv {subcommand}' for this operation."
        ],
    )
