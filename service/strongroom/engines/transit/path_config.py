"""``keys/<name>/config``: a key's version bounds and permissions.

https://openbao.org/api-docs/secret/transit/#update-key-configuration
"""

from __future__ import annotations

from typing import Any

from strongroom.engines.transit.base import NAME, PathGroup, int_field, read_response
from strongroom.engines.transit.path_keys import auto_rotate_seconds
from strongroom.engines.transit.policy import Policy
from strongroom.errors import InvalidRequest
from strongroom.fields import to_bool
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

FORCED_MINIMUM = "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1"


class ConfigPath(PathGroup):
    """``min_decryption_version``, ``min_encryption_version``, ``deletion_allowed``,
    ``exportable`` and ``allow_plaintext_backup`` (both can only be turned on), ``auto_rotate_period``."""

    def paths(self) -> list[Path]:
        return [
            Path(
                f"keys/{NAME}/config",
                {logical.UPDATE: self.write},
                synopsis="Configure a named encryption key",
                description="This path is used to configure the named key. Currently, this supports adjusting "
                "the minimum version of the key allowed to be used for decryption via the "
                "min_decryption_version parameter.",
            )
        ]

    def write(self, req: Request, name: str, **_: str) -> Response:
        """``POST keys/<name>/config``: answer with the key as it now reads."""
        data = req.data
        warnings: list[str] = []

        def change(policy: Policy | None) -> Policy:
            warnings.clear()
            if policy is None:
                raise InvalidRequest(f"no existing key named {name} could be found")
            if "min_decryption_version" in data:
                set_min_decryption(policy, int_field(data, "min_decryption_version"), warnings)
            if "min_encryption_version" in data:
                set_min_encryption(policy, int_field(data, "min_encryption_version"))
            if 0 < policy.min_encryption_version < policy.min_decryption_version:
                raise InvalidRequest(
                    "cannot set min encryption/decryption values; min encryption version of "
                    f"{policy.min_encryption_version} must be greater than or equal to min decryption version of "
                    f"{policy.min_decryption_version}"
                )
            set_permissions(policy, data)
            return policy

        policy, index = self.store.update(name, change)
        assert policy is not None
        return read_response(policy, index, warnings)


def set_min_decryption(policy: Policy, minimum: int, warnings: list[str]) -> None:
    """``min_decryption_version`` (0 is read as 1, with Vault's warning)."""
    if minimum < 0:
        raise InvalidRequest("min decryption version cannot be negative")
    if minimum == 0:
        minimum = 1
        warnings.append(FORCED_MINIMUM)
    if minimum > policy.latest_version:
        raise InvalidRequest(
            f"cannot set min decryption version of {minimum}, latest key version is {policy.latest_version}"
        )
    if minimum < policy.min_available_version:
        raise InvalidRequest("min decryption version should not be less then min available version")
    policy.min_decryption_version = minimum


def set_min_encryption(policy: Policy, minimum: int) -> None:
    """``min_encryption_version`` (0: the latest)."""
    if minimum < 0:
        raise InvalidRequest("min encryption version cannot be negative")
    if minimum > policy.latest_version:
        raise InvalidRequest(
            f"cannot set min encryption version of {minimum}, latest key version is {policy.latest_version}"
        )
    policy.min_encryption_version = minimum


def set_permissions(policy: Policy, data: dict[str, Any]) -> None:
    """``deletion_allowed``, ``auto_rotate_period``; ``exportable`` and ``allow_plaintext_backup``
    can only be turned on (Vault ignores an attempt to turn them off)."""
    if "deletion_allowed" in data:
        policy.deletion_allowed = to_bool("deletion_allowed", data["deletion_allowed"])
    if to_bool("exportable", data.get("exportable")):
        policy.exportable = True
    if to_bool("allow_plaintext_backup", data.get("allow_plaintext_backup")):
        policy.allow_plaintext_backup = True
    if "auto_rotate_period" in data:
        policy.auto_rotate_period = auto_rotate_seconds(data["auto_rotate_period"])
