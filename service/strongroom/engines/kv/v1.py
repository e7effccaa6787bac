"""KV version 1: one unversioned JSON object per path (Vault's ``PassthroughBackend``).

https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1
"""

from __future__ import annotations

from strongroom.config.model import SYSTEM_LEASE_TTL_SECONDS
from strongroom.engines.kv.base import KVBackend
from strongroom.engines.kv.model import decode, encode
from strongroom.errors import InvalidRequest
from strongroom.fields import lease_seconds
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Clock, Request, Response
from strongroom.storage import Backend

# Vault's system default lease TTL (768h), reported by reads without a ttl.
DEFAULT_LEASE_TTL = SYSTEM_LEASE_TTL_SECONDS


class KVv1(KVBackend):
    """The ``Engine`` of a ``kv`` mount of version 1 (and of ``generic``).

    Each secret is stored at its own path in the mount's view.  A ``ttl`` (or
    ``lease``) key in the secret becomes the read's ``lease_duration``, a hint
    to readers; nothing expires.  One path, as Vault's ``PassthroughBackend``:
    read, list, create/update (whole object) and delete; PATCH is a 405.
    """

    def __init__(self, view: Backend, clock: Clock | None = None, *, default_lease_ttl: int = DEFAULT_LEASE_TTL):
        self.view = view
        self.default_lease_ttl = default_lease_ttl
        super().__init__(
            [
                Path(
                    "(?P<path>.*)",
                    {
                        logical.READ: self.read,
                        logical.LIST: self.list,
                        logical.UPDATE: self.write,
                        logical.DELETE: self.delete,
                    },
                    exists=self._exists,
                    synopsis="Pass-through secret storage to the storage backend, allowing you to read/write "
                    "arbitrary data into secret storage.",
                    description="The pass-through backend reads and writes arbitrary data into secret storage, "
                    "encrypting it along the way.  A 'ttl' key in the data is a hint to readers "
                    "(lease_duration); nothing expires.",
                )
            ]
        )

    def _exists(self, req: Request, path: str) -> bool:
        """Whether a secret is stored at the path (decides create vs update for the ACL)."""
        return bool(path) and self.view.get(path) is not None

    def read(self, req: Request, path: str) -> Response | None:
        """https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#read-secret"""
        if not path or path.endswith("/"):
            return None
        raw = self.view.get(path)
        if raw is None:
            return None
        data = decode(raw)
        ttl = self.default_lease_ttl
        for name in ("ttl", "lease"):
            if name in data:
                parsed = lease_seconds(data[name])
                if parsed is not None:
                    ttl = parsed
                break
        return Response(data=data, lease_duration=ttl)

    def list(self, req: Request, path: str) -> Response | None:
        """https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#list-secrets

        None (404) when the folder is empty."""
        if path and not path.endswith("/"):
            path += "/"
        keys = self.view.list(path)
        return Response(data={"keys": keys}) if keys else None

    def write(self, req: Request, path: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#create-update-secret"""
        data = req.data
        if not path:
            raise InvalidRequest("missing path")
        if not data:
            raise InvalidRequest("missing data fields")
        if not isinstance(data, dict):
            raise InvalidRequest("failed to parse JSON input: body must be a JSON object")
        return Response(index=self.view.put(path, encode(data)))

    def delete(self, req: Request, path: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#delete-secret"""
        if not path or path.endswith("/"):
            return Response()
        return Response(index=self.view.delete(path))
