"""``<mount>/config``: settings applied to every key of a KV v2 mount.

https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#configure-the-kv-engine
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-kv-engine-configuration
"""

from __future__ import annotations

from strongroom.engines.kv.base import PathGroup
from strongroom.engines.kv.model import DELETE_VERSION_AFTER_DISABLED
from strongroom.engines.kv.store import CONFIG_KEY
from strongroom.fields import UINT32_MAX, to_bool, to_count, to_duration_seconds
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

CONFIG_FIELDS = ("max_versions", "cas_required", "delete_version_after")


class ConfigPath(PathGroup):
    """``max_versions`` (0: Vault's default of 10), ``cas_required``, and
    ``delete_version_after`` (0 clears it, a negative duration disables it on every key)."""

    def path(self) -> Path:
        return Path(
            "config",
            {logical.READ: self.read, logical.UPDATE: self.write},
            synopsis="Configures settings for the KV store",
            description="This path configures backend level settings that are applied to every key in the "
            "key-value store: max_versions, cas_required and delete_version_after.",
        )

    def read(self, req: Request) -> Response:
        """``GET config``."""
        return Response(data=self.store.read_config().render())

    def write(self, req: Request) -> Response:
        """``POST config``: change the given settings only."""
        data = req.data
        if not any(name in data for name in CONFIG_FIELDS):
            return Response()
        # Vault stores it as a uint32 and wraps what does not fit; refused here instead.
        max_versions = (
            to_count("max_versions", data["max_versions"], maximum=UINT32_MAX, validated=True)
            if "max_versions" in data
            else None
        )
        cas_required = to_bool("cas_required", data["cas_required"], validated=True) if "cas_required" in data else None
        delete_after = (
            to_duration_seconds("delete_version_after", data["delete_version_after"], signed=True, validated=True)
            if "delete_version_after" in data
            else None
        )

        def attempt() -> int:
            # Guarded so that two processes changing different settings at once
            # cannot undo each other's change.
            config, read_index = self.store.load_config()
            if max_versions is not None:
                config.max_versions = max_versions
            if cas_required is not None:
                config.cas_required = cas_required
            if delete_after is not None:
                config.delete_version_after = DELETE_VERSION_AFTER_DISABLED if delete_after < 0 else delete_after
            index, _ = self.store.commit([self.store.guard_config(read_index), self.store.config_op(config)])
            return index

        return Response(index=self.store.update(CONFIG_KEY, attempt, what="the mount config"))
