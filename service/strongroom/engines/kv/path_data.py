"""``<mount>/data/<path>``: read, write, patch and soft-delete versions of a secret.

https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-version
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#create-update-secret
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#patch-secret
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#delete-latest-version-of-secret
"""

from __future__ import annotations

import copy
from typing import Any

from strongroom.engines.kv.base import PathGroup
from strongroom.engines.kv.model import Config, KeyMetadata
from strongroom.engines.kv.store import Secret
from strongroom.errors import CheckAndSetMismatch, InvalidRequest
from strongroom.fields import to_count, to_map, unknown_fields_warning, weak_int
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

DATA_FIELDS = {"data", "options", "version"}


def check_and_set(options: dict | None, config: Config, meta: KeyMetadata) -> None:
    """Vault's ``cas`` rule: when given it must equal the current version (0: the
    key has no version yet); when absent, neither the mount nor the key may require it."""
    if options is not None and "cas" in options:
        try:
            cas = weak_int(options["cas"])
        except ValueError:
            raise InvalidRequest("error parsing check-and-set parameter") from None
        if cas != meta.current_version:
            raise CheckAndSetMismatch("check-and-set parameter did not match the current version")
    elif config.cas_required or meta.cas_required:
        raise InvalidRequest("check-and-set parameter required for this call")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch of ``patch`` onto ``target`` (neither is modified)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


class DataPath(PathGroup):
    """Versions of a secret: each write adds one, reads return the latest or ``?version=N``.

    A deleted or destroyed version reads as ``Response(status=404, data=...)``:
    Vault answers 404 *with* the version's metadata and ``"data": null``.
    Writes are optimistic read-modify-write cycles (``VersionedStore.update``):
    a conflicting writer re-reads, re-checks ``cas`` and tries again.
    """

    def path(self) -> Path:
        return Path(
            "data/(?P<path>.*)",
            {
                logical.READ: self.read,
                logical.UPDATE: self.write,
                logical.PATCH: self.patch,
                logical.DELETE: self.delete,
            },
            exists=self.exists,
            synopsis="Write, Patch, Read, and Delete data in the Key-Value Store.",
            description="This path takes a key name and value data to store in the key-value store.  A write "
            "adds a version ('options.cas' must match the current version when given or required), a read "
            "returns the latest or '?version=N', a patch merges into the current version (RFC 7396) and a "
            "delete soft-deletes the latest version.",
        )

    def read(self, req: Request, path: str) -> Response | None:
        """``GET data/<path>?version=N``; None (404) when the key or version is unknown.

        The secret's metadata, then the version's data (``VersionedStore.read_version``)."""
        found = self.store.read_version(path, to_count("version", req.data.get("version"), validated=True))
        if found is None:
            return None
        body = {"data": None, "metadata": found.meta.version_summary(found.number)}
        if not found.live:
            return Response(status=404, data=body)
        body["data"] = found.data
        return Response(data=body)

    def write(self, req: Request, path: str) -> Response:
        """``POST data/<path>`` with ``{"data": {...}, "options": {"cas": N}}``: a new version."""
        if not path:
            raise InvalidRequest("missing path")
        if "data" not in req.data:
            raise InvalidRequest("no data provided")
        data = to_map("data", req.data["data"])
        options = to_map("options", req.data.get("options"))

        def attempt() -> Response:
            config = self.store.read_config()
            secret = self.store.load(path)
            meta = secret.meta or KeyMetadata(path=path)
            check_and_set(options, config, meta)
            return self._add_version(req, secret, config, meta, data)

        return self.store.update(path, attempt, what=f"secret {path!r}")

    def patch(self, req: Request, path: str) -> Response:
        """``PATCH data/<path>``: a new version from a JSON merge patch of the current one.

        404 without a body when there is no current version, 404 with the
        version's metadata (flat, as in a write response) when it is deleted
        or destroyed."""
        if req.data.get("data") is None:
            raise InvalidRequest("no data provided")
        patch = to_map("data", req.data["data"], validated=True)
        options = to_map("options", req.data.get("options"))

        def attempt() -> Response:
            secret = self.store.read(path)
            meta = secret.meta
            if meta is None:
                return Response(status=404)
            config = self.store.read_config()
            check_and_set(options, config, meta)
            current = meta.versions.get(meta.current_version)
            if current is None:
                return Response(status=404)
            if current.destroyed or current.is_deleted(self.store.now()):
                return Response(status=404, data=meta.version_summary(meta.current_version))
            existing = self.store.version_data(secret, meta.current_version)
            return self._add_version(req, secret, config, meta, merge_patch(existing, patch))

        return self.store.update(path, attempt, what=f"secret {path!r}")

    def delete(self, req: Request, path: str) -> Response:
        """``DELETE data/<path>``: soft-delete the latest version (no-op when already gone)."""
        if not path:
            return Response()

        def attempt() -> Response:
            secret = self.store.load(path)
            meta = secret.meta
            if meta is None:
                return Response()
            latest = meta.versions.get(meta.current_version)
            now = self.store.now()
            if latest is None or latest.destroyed or latest.is_deleted(now):
                return Response()
            latest.deletion_time = now
            index, _ = self.store.commit_secret(secret, meta)
            return Response(index=index)

        return self.store.update(path, attempt, what=f"secret {path!r}")

    def _add_version(self, req: Request, secret: Secret, config: Config, meta: KeyMetadata, data: Any) -> Response:
        """Commit ``data`` as the next version of ``meta``, the state of ``secret`` as read."""
        key = secret.path
        now = self.store.now()
        version, pruned = meta.add_version(now, self.store.deletion_time(now, config, meta), config.max_versions)
        new_version, version.blob = self.store.version_op(
            key, meta.current_version, data, retained=meta.retained_versions(config.max_versions)
        )
        index, warnings = self.store.commit_secret(
            secret, meta, [new_version], [k for n, blob in pruned for k in self.store.data_keys(key, n, blob)]
        )
        return Response(
            data=meta.version_summary(meta.current_version),
            index=index,
            warnings=unknown_fields_warning(req.data, DATA_FIELDS) + warnings,
        )
