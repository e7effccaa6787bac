"""``sys/remount`` and ``sys/remount/status/<id>``: move a secrets engine or an
auth method to another path.

https://developer.hashicorp.com/vault/api-docs/system/remount

A mount's data lives under its uuid (``logical/<uuid>/``, ``auth/<uuid>/``), not
its path, so a move is one write of the mount table: it is done (``success``)
by the time the answer leaves, where Vault queues a copy and reports progress.
The answer and the status keep Vault's shapes (a ``migration_id``; the status
names the source and target mounts).  Policies naming the old path are left
as they are, as in Vault: move the mount, then the policies.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from strongroom.core.mounts import RESERVED, normalize_path
from strongroom.errors import InvalidRequest, NotFound
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core

STATUS_PREFIX = "sys/remount-status/"
#: Mounts that never move (Vault's "cannot remount" list).
FIXED = ("auth/token/", "cubbyhole/", "identity/", "sys/")


def _mount_path(value: object) -> str:
    if not isinstance(value, str) or not value.strip("/"):
        raise InvalidRequest("both 'from' and 'to' path must be specified as a string")
    return normalize_path(value)


def remount_paths(core: Core) -> list[Path]:
    def remount(req: Request) -> Response:
        data = req.data or {}
        source, target = _mount_path(data.get("from")), _mount_path(data.get("to"))
        if source in FIXED:
            raise InvalidRequest(f'cannot remount "{source}"')
        auth = source.startswith("auth/")
        if target.startswith("auth/") != auth or (not auth and target.startswith(RESERVED)) or target in FIXED:
            raise InvalidRequest(f"cannot remount to destination {target}")
        if auth:
            _, index = core.auth_mounts.move(source[len("auth/") :], target[len("auth/") :])
            core.changed(["auth"])
        else:
            _, index = core.mounts.move(source, target)
            core.changed(["mounts"])
        migration_id = str(uuid.UUID(bytes=core.randbytes(16)))
        status = {"source_mount": source, "target_mount": target, "status": "success"}
        core.barrier.put(STATUS_PREFIX + migration_id, json.dumps(status).encode())
        return Response(
            data={"migration_id": migration_id},
            data_at_top_level=True,
            warnings=["Mount move has been queued. Progress will be reported in the server log, "
                      "tagged with the returned migration_id"],
            index=index,
        )  # fmt: skip

    def status(req: Request, migration_id: str) -> Response:
        raw = core.barrier.get(STATUS_PREFIX + migration_id)
        if raw is None:
            raise NotFound()
        return Response(data={"migration_id": migration_id, "migration_info": json.loads(raw)})

    return [
        Path(
            "remount",
            {logical.UPDATE: remount},
            synopsis="Move the mount point of an already-mounted backend, within or across namespaces",
            description="Write 'from' and 'to' (mount paths; auth methods as auth/<path>). The data moves "
            "with the mount; policies naming the old path do not.",
        ),
        Path(
            "remount/status/(?P<migration_id>[^/]+)",
            {logical.READ: status},
            synopsis="Check the status of a mount move operation",
            description="The source and target of a move and its status ('success' once the answer left).",
        ),
    ]
