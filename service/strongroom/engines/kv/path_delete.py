"""``<mount>/delete/<path>``, ``undelete/<path>``, ``destroy/<path>``: versions by number.

https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#delete-secret-versions
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#undelete-secret-versions
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#destroy-secret-versions

Each takes ``{"versions": [1, 2]}`` (or ``"1,2"``), skips numbers it cannot
apply to, and answers 204.
"""

from __future__ import annotations

from strongroom.engines.kv.base import PathGroup
from strongroom.engines.kv.model import KeyMetadata
from strongroom.errors import InvalidRequest
from strongroom.fields import to_comma_int_slice
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response


class _VersionsPath(PathGroup):
    """Shared shape: a write naming versions, applied to the key's metadata as an
    optimistic read-modify-write (``VersionedStore.update``)."""

    prefix = ""
    missing_versions_message = "No version number provided"
    synopsis = ""
    description = ""

    def path(self) -> Path:
        return Path(
            f"{self.prefix}(?P<path>.*)",
            {logical.UPDATE: self.write},
            synopsis=self.synopsis,
            description=self.description
            + "  'versions' is a list of version numbers (or a comma-separated string); numbers it cannot "
            "apply to are skipped.",
        )

    def write(self, req: Request, path: str) -> Response:
        versions = to_comma_int_slice("versions", req.data.get("versions"))
        if not versions:
            raise InvalidRequest(self.missing_versions_message)
        if not path:
            return Response()

        def attempt() -> Response:
            secret = self.store.load(path)
            meta = secret.meta
            if meta is None:
                return Response()
            garbage = self.apply(meta, versions)
            if garbage is None:
                return Response()
            index, warnings = self.store.commit_secret(secret, meta, garbage=garbage)
            return Response(index=index, warnings=warnings)

        return self.store.update(path, attempt, what=f"secret {path!r}")

    def apply(self, meta: KeyMetadata, versions: list[int]) -> list[str] | None:
        """Change ``meta``; return the storage keys to remove, or None when nothing changed."""
        raise NotImplementedError


class DeletePath(_VersionsPath):
    """Soft-delete versions: they read as deleted until undeleted."""

    prefix = "delete/"
    synopsis = "Marks one or more versions as deleted in the KV store."
    description = "Deletes the data for the provided version and path in the key-value store; it can be undeleted."

    def apply(self, meta: KeyMetadata, versions: list[int]) -> list[str] | None:
        now = self.store.now()
        changed = False
        for number in versions:
            version = meta.versions.get(number)
            if version is None or version.destroyed or version.is_deleted(now):
                continue
            version.deletion_time = now
            changed = True
        return [] if changed else None


class UndeletePath(_VersionsPath):
    """Restore soft-deleted versions (``delete_version_after`` restarts from now)."""

    prefix = "undelete/"
    synopsis = "Undeletes one or more versions from the KV store."
    description = "Undeletes the data for the provided version and path in the key-value store."

    def apply(self, meta: KeyMetadata, versions: list[int]) -> list[str] | None:
        config = self.store.read_config()
        now = self.store.now()
        changed = False
        for number in versions:
            version = meta.versions.get(number)
            if version is None or version.destroyed:
                continue
            version.deletion_time = self.store.deletion_time(now, config, meta)
            changed = True
        return [] if changed else None


class DestroyPath(_VersionsPath):
    """Remove versions' data for good; their metadata stays, marked ``destroyed``."""

    prefix = "destroy/"
    missing_versions_message = "no version number provided"
    synopsis = "Permanently removes one or more versions in the KV store"
    description = "Permanently removes the data for the provided version and path; its metadata stays."

    def apply(self, meta: KeyMetadata, versions: list[int]) -> list[str] | None:
        garbage = []
        for number in dict.fromkeys(versions):
            version = meta.versions.get(number)
            if version is None or version.destroyed:
                continue
            version.destroyed = True
            garbage.extend(self.store.data_keys(meta.path, number, version.blob))
        return garbage or None
