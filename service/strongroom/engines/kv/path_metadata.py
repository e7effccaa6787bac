"""``<mount>/metadata/<path>``: a secret's settings and version history; LIST of keys.

https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-metadata
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#list-secrets
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#create-update-metadata
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#patch-metadata
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#delete-metadata-and-all-versions
"""

from __future__ import annotations

import json
from typing import Any

from strongroom.engines.kv.base import PathGroup
from strongroom.engines.kv.model import Config, KeyMetadata
from strongroom.errors import InvalidRequest
from strongroom.fields import UINT32_MAX, to_bool, to_count, to_duration_seconds, to_map, weak_string
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

METADATA_FIELDS = ("max_versions", "cas_required", "delete_version_after", "custom_metadata")

# Vault's limits on custom_metadata.
MAX_CUSTOM_METADATA_KEYS = 64
MAX_CUSTOM_METADATA_KEY_LENGTH = 128
MAX_CUSTOM_METADATA_VALUE_LENGTH = 512
_PREFIX = "custom_metadata validation failed"
_CAS_WARNING = '"cas_required" set to false, but is mandated by backend config. This value will be ignored.'


def multierror(messages: list[str]) -> str:
    """hashicorp/go-multierror's rendering, which Vault puts in ``errors``."""
    head = "1 error occurred:" if len(messages) == 1 else f"{len(messages)} errors occurred:"
    return head + "\n" + "".join(f"\t* {m}\n" for m in messages) + "\n"


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def parse_custom_metadata(raw: dict, *, drop_nulls: bool) -> dict[str, str]:
    """Values weakly converted to strings (``5`` -> ``"5"``); objects and arrays are refused.
    ``drop_nulls`` (PATCH) leaves out the keys whose value is null."""
    parsed = {}
    for name, value in raw.items():
        if drop_nulls and value is None:
            continue
        try:
            parsed[name] = weak_string(value)
        except ValueError as exc:
            raise InvalidRequest(f"{_PREFIX}: {exc}") from None
    return parsed


def validate_custom_metadata(custom: dict[str, str]) -> None:
    """Vault's limits: at most 64 keys, keys 1..128 bytes, values 1..512 bytes, all printable."""
    if len(custom) > MAX_CUSTOM_METADATA_KEYS:
        raise InvalidRequest(
            multierror(
                [f"{_PREFIX}: payload must contain at most {MAX_CUSTOM_METADATA_KEYS} keys, provided {len(custom)}"]
            )
        )
    problems = []
    for name in sorted(custom):
        value = custom[name]
        key_length, value_length = len(name.encode("utf-8")), len(value.encode("utf-8"))
        if not 0 < key_length <= MAX_CUSTOM_METADATA_KEY_LENGTH:
            problems.append(
                f"{_PREFIX}: length of key {_quote(name)} is {key_length} but must be "
                f"0 < len(key) <= {MAX_CUSTOM_METADATA_KEY_LENGTH}"
            )
        if not 0 < value_length <= MAX_CUSTOM_METADATA_VALUE_LENGTH:
            problems.append(
                f"{_PREFIX}: length of value for key {_quote(name)} is {value_length} but must be "
                f"0 < len(value) <= {MAX_CUSTOM_METADATA_VALUE_LENGTH}"
            )
        if not name.isprintable():
            problems.append(f"{_PREFIX}: key {_quote(name)} ({name}) contains unprintable characters")
        if not value.isprintable():
            problems.append(f"{_PREFIX}: value for key {_quote(name)} contains unprintable characters")
    if problems:
        raise InvalidRequest(multierror(problems))


def _max_versions(value: Any, *, validated: bool) -> int:
    # Vault stores it as a uint32 and wraps what does not fit (-1 becomes 4294967295); refused here instead.
    return to_count("max_versions", value, maximum=UINT32_MAX, validated=validated)


def merge_custom_metadata(current: dict[str, str] | None, patch: dict[str, Any] | None) -> dict[str, str] | None:
    """``custom_metadata`` after a merge patch, validated: a null patch clears it,
    a null value removes its key, other values are weakly turned into strings."""
    if patch is None:
        return None
    merged = dict(current or {})
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = weak_string(value)
    validate_custom_metadata(merged)
    return merged or None


def _patched_settings(data: dict[str, Any]) -> dict[str, Any]:
    """The key settings a metadata PATCH gives, converted as Vault converts them."""
    changes: dict[str, Any] = {}
    if "max_versions" in data:
        changes["max_versions"] = _max_versions(data["max_versions"], validated=True)
    if "cas_required" in data:
        changes["cas_required"] = to_bool("cas_required", data["cas_required"], validated=True)
    if "delete_version_after" in data:
        changes["delete_version_after"] = to_duration_seconds(
            "delete_version_after", data["delete_version_after"], validated=True
        )
    return changes


class MetadataPath(PathGroup):
    """Per-key settings (``max_versions``, ``cas_required``, ``delete_version_after``,
    ``custom_metadata``), the version history, LIST, and permanent deletion."""

    def path(self) -> Path:
        return Path(
            "metadata/(?P<path>.*)",
            {
                logical.READ: self.read,
                logical.LIST: self.list_keys,
                logical.UPDATE: self.write,
                logical.PATCH: self.patch,
                logical.DELETE: self.delete,
            },
            exists=self.exists,
            synopsis="Configures settings for the KV store",
            description="This path configures settings for a key (max_versions, cas_required, "
            "delete_version_after, custom_metadata) and reads its version history; LIST lists the keys of a "
            "folder, DELETE removes the key's metadata and every version for good.",
        )

    def read(self, req: Request, path: str) -> Response | None:
        """``GET metadata/<path>``; None (404) for an unknown key."""
        if not path or path.endswith("/"):
            return None
        meta = self.store.load(path).meta
        return None if meta is None else Response(data=meta.render())

    def list_keys(self, req: Request, path: str) -> Response | None:
        """``LIST metadata/<folder>/``: keys and sub-folders; None (404) when empty."""
        keys = self.store.list_metadata(path)
        return Response(data={"keys": keys}) if keys else None

    def write(self, req: Request, path: str) -> Response:
        """``POST metadata/<path>``: set the given settings, creating the key if needed."""
        if not path:
            raise InvalidRequest("missing path")
        data = req.data
        if not any(name in data for name in METADATA_FIELDS):
            return Response()
        config = self.store.read_config()
        max_versions = _max_versions(data["max_versions"], validated=False) if "max_versions" in data else None
        cas_required = to_bool("cas_required", data["cas_required"]) if "cas_required" in data else None
        delete_after = (
            to_duration_seconds("delete_version_after", data["delete_version_after"])
            if "delete_version_after" in data
            else None
        )
        custom = None
        if "custom_metadata" in data:
            custom = parse_custom_metadata(to_map("custom_metadata", data["custom_metadata"]) or {}, drop_nulls=False)
            validate_custom_metadata(custom)
        warnings = self._cas_warning(config, cas_required)

        def attempt() -> int:
            secret = self.store.load(path)
            meta = secret.meta
            if meta is None:
                now = self.store.now()
                meta = KeyMetadata(path=path, created_time=now, updated_time=now)
            if max_versions is not None:
                meta.max_versions = max_versions
            if cas_required is not None:
                meta.cas_required = cas_required
            if delete_after is not None:
                meta.delete_version_after = delete_after
            if custom is not None:
                meta.custom_metadata = custom or None
            index, _ = self.store.commit_secret(secret, meta)
            return index

        index = self.store.update(path, attempt, what=f"secret {path!r}")
        return Response(index=index, warnings=warnings)

    def patch(self, req: Request, path: str) -> Response:
        """``PATCH metadata/<path>``: JSON merge patch of the settings of an existing key.

        A null resets a setting; in ``custom_metadata`` a null removes that key.
        404 (no body) when the key does not exist."""
        if not path:
            raise InvalidRequest("missing path")
        data = req.data
        custom_patch: dict[str, Any] | None = None
        if data.get("custom_metadata") is not None:
            custom_patch = to_map("custom_metadata", data["custom_metadata"], validated=True) or {}
            validate_custom_metadata(parse_custom_metadata(custom_patch, drop_nulls=True))
        changes = _patched_settings(data)
        config = self.store.read_config()

        def attempt() -> Response:
            secret = self.store.load(path)
            meta = secret.meta
            if meta is None:
                return Response(status=404)
            if not changes and "custom_metadata" not in data:
                return Response()
            for name, value in changes.items():
                setattr(meta, name, value)
            if "custom_metadata" in data:
                meta.custom_metadata = merge_custom_metadata(meta.custom_metadata, custom_patch)
            index, _ = self.store.commit_secret(secret, meta)
            return Response(index=index, warnings=self._cas_warning(config, changes.get("cas_required")))

        return self.store.update(path, attempt, what=f"secret {path!r}")

    def delete(self, req: Request, path: str) -> Response:
        """``DELETE metadata/<path>``: the key's metadata and every version, permanently.

        Not a read-modify-write: whatever a concurrent writer committed is
        deleted too (the delete is ordered after it), and a writer that read
        the metadata before the delete fails its check and starts again."""
        if not path:
            return Response()
        with self.store.lock(path):
            if not self.store.exists(path):
                return Response()
            index, _ = self.store.commit(self.store.delete_key_ops(path))
        return Response(index=index)

    @staticmethod
    def _cas_warning(config: Config, cas_required: bool | None) -> list[str]:
        return [_CAS_WARNING] if cas_required is False and config.cas_required else []
