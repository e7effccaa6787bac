"""Vault's userpass auth method (``auth enable userpass``).

https://developer.hashicorp.com/vault/docs/auth/userpass
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.auth.userpass.backend import UserpassBackend
from strongroom.sdk.logical import Clock, Engine
from strongroom.storage import Backend


def new_userpass(options: Mapping[str, Any], view: Backend, clock: Clock) -> Engine:
    """The engine of a userpass mount over its storage ``view`` (a ``logical.Factory``)."""
    return UserpassBackend(view)


def check_options(options: Mapping[str, Any]) -> None:
    """Userpass takes no options; like Vault, it ignores any it is given."""


__all__ = ["UserpassBackend", "check_options", "new_userpass"]
