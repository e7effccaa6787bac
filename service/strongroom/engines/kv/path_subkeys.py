"""``<mount>/subkeys/<path>``: a version's structure with every value replaced by null.

https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-subkeys
"""

from __future__ import annotations

from typing import Any

from strongroom.engines.kv.base import PathGroup
from strongroom.fields import to_count, to_int
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response


def strip_values(data: Any, max_depth: int, depth: int = 1) -> dict:
    """Non-empty objects are walked (up to ``max_depth``; 0 is unlimited, negative
    stops at the top as in Vault); every other value becomes null."""
    if not isinstance(data, dict):
        return {}
    result: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict) and value and (max_depth == 0 or depth + 1 <= max_depth):
            result[name] = strip_values(value, max_depth, depth + 1)
        else:
            result[name] = None
    return result


class SubkeysPath(PathGroup):
    """``GET subkeys/<path>?version=N&depth=D``; 404 with the version's metadata
    (``subkeys: null``) when that version is deleted or destroyed."""

    def path(self) -> Path:
        return Path(
            "subkeys/(?P<path>.*)",
            {logical.READ: self.read},
            synopsis="Read the structure of a secret entry from the Key-Value store with the values removed.",
            description="The keys of a version's data, nested objects walked down to '?depth=D' (0: all "
            "of them), every value replaced by null; '?version=N' picks the version.",
        )

    def read(self, req: Request, path: str) -> Response | None:
        depth = to_int("depth", req.data.get("depth"), validated=True)
        found = self.store.read_version(path, to_count("version", req.data.get("version"), validated=True))
        if found is None:
            return None
        body = {"metadata": found.meta.version_summary(found.number), "subkeys": None}
        if not found.live:
            return Response(status=404, data=body)
        body["subkeys"] = strip_values(found.data, depth)
        return Response(data=body)
