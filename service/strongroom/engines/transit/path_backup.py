"""``backup/<name>`` and ``restore(/<name>)``: a key in Vault's plaintext backup format.

https://openbao.org/api-docs/secret/transit/#backup-key
https://openbao.org/api-docs/secret/transit/#restore-key

Only keys created with ``exportable`` and ``allow_plaintext_backup`` back up.
"""

from __future__ import annotations

from strongroom.engines.transit.backup import backup, restore
from strongroom.engines.transit.base import NAME, PathGroup
from strongroom.engines.transit.policy import Policy
from strongroom.errors import InvalidRequest
from strongroom.fields import to_bool, to_string
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response


class BackupPath(PathGroup):
    """``GET backup/<name>``, ``POST restore(/<name>)`` with ``backup`` and ``force``."""

    def paths(self) -> list[Path]:
        return [
            Path(
                f"backup/{NAME}",
                {logical.READ: self.backup},
                synopsis="Backup the named key",
                description="This path is used to backup the named key.",
            ),
            Path(
                f"restore(/{NAME})?",
                {logical.UPDATE: self.restore},
                synopsis="Restore the named key",
                description="This path is used to restore the named key.",
            ),
        ]

    def backup(self, req: Request, name: str, **_: str) -> Response:
        policy = self.store.get(name)
        if policy is None:
            raise InvalidRequest(f"key {name!r} not found")
        return Response(data={"backup": backup(policy, self.clock())})

    def restore(self, req: Request, name: str = "", **_: str) -> Response:
        encoded = to_string("backup", req.data.get("backup"))
        if not encoded:
            raise InvalidRequest("'backup' must be supplied")
        force = to_bool("force", req.data.get("force"))
        restored = restore(encoded, name)

        def put(current: Policy | None) -> Policy:
            if current is not None and not force:
                raise InvalidRequest(f'key "{restored.name}" already exists')
            return restored

        index = self.store.update(restored.name, put)[1]
        return Response(index=index)
