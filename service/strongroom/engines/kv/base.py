"""What every KV path handler shares: matching, operation dispatch, write checks."""

from __future__ import annotations

from collections.abc import Callable

from strongroom.errors import InvalidRequest, MethodNotAllowed
from strongroom.sdk import logical
from strongroom.sdk.logical import Request, Response

WRITES = (logical.CREATE, logical.UPDATE, logical.PATCH)


def reject_folder_write(req: Request) -> None:
    """Vault refuses create/update/patch on a path ending in ``/`` (a folder)."""
    folder = req.relative_path.endswith("/") or (not req.relative_path and req.path.endswith("/"))
    if req.operation in WRITES and folder:
        raise InvalidRequest("cannot write to a path ending in '/'")


class PathHandler:
    """One path group of a KV v2 mount (Vault's ``framework.Path``).

    ``prefix`` is the group's path inside the mount (``data/``); a prefix that
    does not end in ``/`` must match exactly (``config``).  Subclasses map
    operations to methods taking ``(req, key)``, where ``key`` is the secret
    path after the prefix.
    """

    prefix: str = ""

    def __init__(self, store):
        self.store = store

    def operations(self) -> dict[str, Callable[[Request, str], Response | None]]:
        """Logical operation -> handler method taking ``(req, key)``."""
        raise NotImplementedError

    def matches(self, relative_path: str) -> bool:
        """Whether this group serves ``relative_path``."""
        if self.prefix.endswith("/"):
            return relative_path.startswith(self.prefix)
        return relative_path == self.prefix

    def handle(self, req: Request) -> Response | None:
        """Dispatch ``req`` to the method for its operation (405 when there is none)."""
        method = self.operations().get(req.operation)
        if method is None:
            raise MethodNotAllowed()
        return method(req, req.relative_path[len(self.prefix) :])

    def exists(self, req: Request) -> bool | None:
        """No existence check: writes are authorised as ``update``."""
        return None

    def unauthenticated_paths(self) -> list[str]:
        """KV paths always need a token."""
        return []
