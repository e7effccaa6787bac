"""``keys/<name>/rotate`` and ``keys/<name>/trim``: add a key version, drop old ones.

https://openbao.org/api-docs/secret/transit/#rotate-key
https://openbao.org/api-docs/secret/transit/#trim-key
"""

from __future__ import annotations

from strongroom.engines.transit.base import NAME, PathGroup, int_field, read_response
from strongroom.engines.transit.policy import Policy
from strongroom.errors import InvalidRequest
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response


class RotatePath(PathGroup):
    """Rotation (a new latest version) and trimming (delete versions below ``min_available_version``)."""

    def paths(self) -> list[Path]:
        return [
            Path(
                f"keys/{NAME}/rotate",
                {logical.UPDATE: self.rotate},
                synopsis="Rotate named encryption key",
                description="This path is used to rotate the named key. After rotation, new encryption "
                "requests using this name will use the new key, but decryption will still be supported for "
                "older versions.",
            ),
            Path(
                f"keys/{NAME}/trim",
                {logical.UPDATE: self.trim},
                synopsis="Trim key versions of a named key",
                description="This path is used to trim key versions of a named key. Trimming only happens "
                "from the lower end of version numbers.",
            ),
        ]

    def rotate(self, req: Request, name: str, **_: str) -> Response:
        """``POST keys/<name>/rotate``: answer with the key as it now reads."""

        def change(policy: Policy | None) -> Policy:
            if policy is None:
                raise InvalidRequest("key not found")
            policy.rotate(self.clock(), self.random_bytes)
            return policy

        policy, index = self.store.update(name, change)
        assert policy is not None
        return read_response(policy, index)

    def trim(self, req: Request, name: str, **_: str) -> Response:
        """``POST keys/<name>/trim`` with ``min_available_version``."""
        minimum = int_field(req.data, "min_available_version")
        if minimum == 0:
            raise InvalidRequest("missing min_available_version")

        def change(policy: Policy | None) -> Policy:
            if policy is None:
                raise InvalidRequest("invalid key name")
            policy.trim(minimum)
            return policy

        policy, index = self.store.update(name, change)
        assert policy is not None
        return read_response(policy, index)
