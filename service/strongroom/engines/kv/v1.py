"""KV version 1: one unversioned JSON object per path (Vault's ``PassthroughBackend``).

https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1
"""

from __future__ import annotations

from collections.abc import Callable

from strongroom.engines.kv.base import reject_folder_write
from strongroom.engines.kv.fields import lease_seconds
from strongroom.engines.kv.model import decode, encode
from strongroom.errors import InvalidRequest, MethodNotAllowed
from strongroom.sdk import logical
from strongroom.sdk.logical import Request, Response

# Vault's system default lease TTL (768h), reported by reads without a ttl.
DEFAULT_LEASE_TTL = 2_764_800


class KVv1:
    """The ``Engine`` of a ``kv`` mount of version 1 (and of ``generic``).

    Each secret is stored at its own path in the mount's view.  A ``ttl`` (or
    ``lease``) key in the secret becomes the read's ``lease_duration``, a hint
    to readers; nothing expires.
    """

    def __init__(self, view, clock: Callable | None = None, *, default_lease_ttl: int = DEFAULT_LEASE_TTL):
        self.view = view
        self.default_lease_ttl = default_lease_ttl

    def handle(self, req: Request) -> Response | None:
        """Read, list, create/update (whole object) and delete; PATCH is not supported."""
        reject_folder_write(req)
        path = req.relative_path
        operation = req.operation
        if operation == logical.READ:
            return self.read(path)
        if operation == logical.LIST:
            return self.list(path)
        if operation in (logical.CREATE, logical.UPDATE):
            return self.write(path, req.data)
        if operation == logical.DELETE:
            return self.delete(path)
        raise MethodNotAllowed()

    def exists(self, req: Request) -> bool | None:
        """Whether a secret is stored at the path (decides create vs update for the ACL)."""
        path = req.relative_path
        return bool(path) and self.view.get(path) is not None

    def unauthenticated_paths(self) -> list[str]:
        """KV paths always need a token."""
        return []

    def read(self, path: str) -> Response | None:
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

    def list(self, path: str) -> Response | None:
        """https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#list-secrets

        None (404) when the folder is empty."""
        if path and not path.endswith("/"):
            path += "/"
        keys = self.view.list(path)
        return Response(data={"keys": keys}) if keys else None

    def write(self, path: str, data: dict) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#create-update-secret"""
        if not path:
            raise InvalidRequest("missing path")
        if not data:
            raise InvalidRequest("missing data fields")
        if not isinstance(data, dict):
            raise InvalidRequest("failed to parse JSON input: body must be a JSON object")
        return Response(index=self.view.put(path, encode(data)))

    def delete(self, path: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#delete-secret"""
        if not path or path.endswith("/"):
            return Response()
        return Response(index=self.view.delete(path))
