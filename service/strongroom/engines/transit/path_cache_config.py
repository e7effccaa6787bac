"""``cache-config``: the size of Vault's per-mount key cache.

https://openbao.org/api-docs/secret/transit/#configure-cache

Strongroom's key cache is not sized by this: every request still reads its key
from storage and only the parsing is kept, per worker, while storage returns the
same bytes (see ``store``), so a rotation is seen by the next request on every
node as storage shows it.  The size is validated as Vault does, stored, and
read back, so configuration tools that set it work.
"""

from __future__ import annotations

import json

from strongroom.engines.transit.base import PathGroup, int_field
from strongroom.errors import InvalidRequest
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

CONFIG_KEY = "config/cache"
MINIMUM_SIZE = 10


class CacheConfigPath(PathGroup):
    """``GET`` and ``POST cache-config`` with ``size`` (0, or at least 10)."""

    def paths(self) -> list[Path]:
        return [
            Path(
                "cache-config",
                {logical.READ: self.read, logical.UPDATE: self.write},
                synopsis="Configures a new cache of the specified size",
                description="This path is used to configure and query the cache size of the active cache, "
                "a size of 0 means unlimited.",
            )
        ]

    def read(self, req: Request) -> Response:
        raw = self.store.view.get(CONFIG_KEY)
        return Response(data={"size": json.loads(raw)["size"] if raw else 0})

    def write(self, req: Request) -> Response:
        size = int_field(req.data, "size")
        if size != 0 and size < MINIMUM_SIZE:
            raise InvalidRequest(f"size must be 0 or a value greater or equal to {MINIMUM_SIZE}")
        index = self.store.view.put(CONFIG_KEY, json.dumps({"size": size}).encode())
        return Response(data={"size": size}, index=index)
