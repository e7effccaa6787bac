"""What both KV versions share: their routing through a path table, and the folder-write rule."""

from __future__ import annotations

from strongroom.engines.kv.store import VersionedStore
from strongroom.errors import InvalidRequest
from strongroom.sdk import framework, logical
from strongroom.sdk.logical import Request, Response


def reject_folder_write(req: Request) -> None:
    """Vault refuses create/update/patch on a path ending in ``/`` (a folder)."""
    folder = req.relative_path.endswith("/") or (not req.relative_path and req.path.endswith("/"))
    if req.operation in logical.MODIFY_OPERATIONS and folder:
        raise InvalidRequest("cannot write to a path ending in '/'")


class KVBackend(framework.Backend):
    """A KV mount's path table (``sdk.framework``), behind the rule that holds for
    every path of the mount: a write to a folder is a 400, before any routing."""

    def handle(self, req: Request) -> Response | None:
        """Refuse a folder write, then route ``req`` through the table."""
        reject_folder_write(req)
        return super().handle(req)


class PathGroup:
    """One group of a KV v2 mount's paths (``data/``, ``metadata/``, ...) over
    the mount's ``VersionedStore``: ``path()`` is its entry in the table."""

    def __init__(self, store: VersionedStore):
        self.store = store

    def path(self) -> framework.Path:
        """The table entry: pattern, operations mapped to this group's handlers, help."""
        raise NotImplementedError

    def exists(self, req: Request, path: str) -> bool:
        """The existence check of the groups that write a key (``data/``, ``metadata/``):
        whether the key has metadata (decides create vs update for the ACL)."""
        return self.store.exists(path)
