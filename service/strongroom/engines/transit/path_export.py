"""``export/<type>/<name>(/<version>)``: the key material of an exportable key.

https://openbao.org/api-docs/secret/transit/#export-key
"""

from __future__ import annotations

from strongroom.engines.transit.base import NAME, PathGroup
from strongroom.engines.transit.policy import b64
from strongroom.errors import InvalidRequest
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

EXPORT_TYPES = ("encryption-key", "signing-key", "hmac-key", "public-key", "certificate-chain")


class ExportPath(PathGroup):
    """``GET export/encryption-key|hmac-key/<name>(/<version>|/latest)`` of a key created ``exportable``."""

    def paths(self) -> list[Path]:
        return [
            Path(
                f"export/(?P<export_type>[^/]+)/{NAME}(/(?P<version>[^/]+))?",
                {logical.READ: self.export},
                synopsis="Export named encryption or signing key",
                description="This path is used to export the named keys that are configured as exportable.",
            )
        ]

    def export(self, req: Request, export_type: str, name: str, version: str = "", **_: str) -> Response | None:
        if export_type not in EXPORT_TYPES:
            raise InvalidRequest(f"invalid export type: {export_type}")
        policy = self.store.get(name)
        if policy is None:
            return None
        if not policy.exportable:
            raise InvalidRequest("private key material is not exportable")
        if export_type not in ("encryption-key", "hmac-key"):
            raise InvalidRequest(f"{export_type} is not a valid export type for a {policy.type} key")
        versions = policy.versions
        if version:
            if version == "latest":
                number = policy.latest_version
            else:
                try:
                    number = int(version)
                except ValueError:
                    raise InvalidRequest("could not parse version") from None
            if number not in versions:
                raise InvalidRequest("version does not exist or cannot be found")
            chosen = {number: versions[number]}
        else:
            chosen = versions
        keys = {
            str(n): b64(entry.key if export_type == "encryption-key" else entry.hmac_key)
            for n, entry in sorted(chosen.items())
        }
        return Response(data={"keys": keys, "name": policy.name, "type": policy.type})
