"""``export/<type>/<name>(/<version>)``: the key material of an exportable key.

https://openbao.org/api-docs/secret/transit/#export-key
"""

from __future__ import annotations

from collections.abc import Callable

from strongroom.engines.transit import asymmetric
from strongroom.engines.transit.base import NAME, PathGroup
from strongroom.engines.transit.policy import HMAC_TYPE, SYMMETRIC_TYPES, KeyVersion, b64
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
        if not policy.exportable and export_type != "public-key":
            raise InvalidRequest("private key material is not exportable")
        render = material(policy.type, export_type)
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
        keys = {str(n): render(entry) for n, entry in sorted(chosen.items())}
        return Response(data={"keys": keys, "name": policy.name, "type": policy.type})


def material(key_type: str, export_type: str) -> Callable[[KeyVersion], str]:
    """How a version of a ``key_type`` key is exported as ``export_type`` (Vault's refusals otherwise)."""
    if export_type == "hmac-key":
        return lambda entry: b64(entry.hmac_key)
    if key_type == HMAC_TYPE:
        raise InvalidRequest(f"unknown key type {key_type} for export type {export_type}")
    symmetric = key_type in SYMMETRIC_TYPES
    if export_type == "encryption-key":
        if symmetric:
            return lambda entry: b64(entry.key)
        if key_type in asymmetric.RSA_BITS:
            return lambda entry: asymmetric.export(entry.key, "signing-key")
        raise InvalidRequest("encryption not supported for the key")
    if symmetric or export_type == "certificate-chain":
        raise InvalidRequest(f"unknown key type {key_type} for export type {export_type}")
    return lambda entry: asymmetric.export(entry.key, export_type)
