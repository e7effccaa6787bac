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

from strongroom.engines.kv.base import PathHandler, reject_folder_write
from strongroom.engines.kv.path_config import ConfigPath
from strongroom.engines.kv.path_data import DataPath
from strongroom.engines.kv.path_delete import DeletePath, DestroyPath, UndeletePath
from strongroom.engines.kv.path_metadata import MetadataPath
from strongroom.engines.kv.path_subkeys import SubkeysPath
from strongroom.engines.kv.store import FOLDER_BUDGET, VersionedStore
from strongroom.sdk import logical
from strongroom.sdk.logical import Request, Response

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


class KVv2:
    """The ``Engine`` of a ``kv`` mount with ``options.version == "2"``.

    ``view`` is the mount's storage view and ``clock`` returns an aware UTC
    datetime; ``rand`` and ``sleep`` pace retries after write conflicts and
    ``folder_budget`` bounds the version data read with every request (see
    ``VersionedStore``).  Stateless apart from storage: config and metadata
    are read by every request, and every read-modify-write is checked in
    storage, so any number of processes may serve the same mount.
    """

    def __init__(
        self,
        view,
        clock: Callable,
        *,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
        folder_budget: int = FOLDER_BUDGET,
    ):
        self.store = VersionedStore(view, clock, rand=rand, sleep=sleep, folder_budget=folder_budget)
        self.paths: list[PathHandler] = [
            ConfigPath(self.store),
            DataPath(self.store),
            MetadataPath(self.store),
            DeletePath(self.store),
            UndeletePath(self.store),
            DestroyPath(self.store),
            SubkeysPath(self.store),
        ]

    def _route(self, req: Request) -> tuple[Request, PathHandler | None]:
        relative = req.relative_path
        if req.operation == logical.LIST and relative and not relative.endswith("/"):
            # Vault's HTTP layer lists folders: LIST metadata/a is LIST metadata/a/.
            req = dataclasses.replace(req, relative_path=relative + "/")
        for path in self.paths:
            if path.matches(req.relative_path):
                return req, path
        return req, None

    def handle(self, req: Request) -> Response | None:
        """Route ``req`` to its path group; 405 for an operation the group lacks."""
        reject_folder_write(req)
        req, path = self._route(req)
        if path is None:
            return self._invalid_path(req)
        return path.handle(req)

    def exists(self, req: Request) -> bool | None:
        """For ``data/`` and ``metadata/`` writes: whether the key exists; else None."""
        _, path = self._route(req)
        return None if path is None else path.exists(req)

    def unauthenticated_paths(self) -> list[str]:
        """KV paths always need a token."""
        return []

    @staticmethod
    def _invalid_path(req: Request) -> Response:
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
