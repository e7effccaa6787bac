"""Vault's AppRole auth method (``auth enable approle``).

https://developer.hashicorp.com/vault/docs/auth/approle
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.auth.approle.backend import AppRoleBackend
from strongroom.sdk.logical import Clock, Engine
from strongroom.storage import Backend


def new_approle(options: Mapping[str, Any], view: Backend, clock: Clock) -> Engine:
    """The engine of an AppRole mount over its storage ``view`` (a ``logical.Factory``)."""
    return AppRoleBackend(view, clock)


def check_options(options: Mapping[str, Any]) -> None:
    """AppRole takes no options; like Vault, it ignores any it is given."""


__all__ = ["AppRoleBackend", "check_options", "new_approle"]
