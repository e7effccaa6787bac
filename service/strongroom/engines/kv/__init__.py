"""The KV secrets engine, versions 1 and 2.

https://developer.hashicorp.com/vault/docs/secrets/kv

``new_kv`` picks the version from the mount's ``options["version"]`` as Vault's
``kv.Factory`` does: ``"1"`` or absent gives ``KVv1``, ``"2"`` gives ``KVv2``,
anything else is refused.  One file per path group (``path_data.py``,
``path_metadata.py``, ...), the v2 data model in ``model.py`` and its storage
layout and concurrency in ``store.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.engines.kv.v1 import KVv1
from strongroom.engines.kv.v2 import KVv2
from strongroom.errors import InvalidRequest
from strongroom.sdk.logical import Clock, Engine
from strongroom.storage import Backend

__all__ = ["KVv1", "KVv2", "kv_version", "new_kv"]


def kv_version(options: Mapping[str, Any] | None, *, mount_type: str = "kv") -> str:
    """The KV version (``"1"`` or ``"2"``) a mount's ``options`` ask for, or ``InvalidRequest``.

    Checks a mount's options without building its engine (``sys/mounts`` runs it first)."""
    version = str((options or {}).get("version", "") or "")
    if version in ("", "1"):
        return "1"
    if version == "2":
        return "2"
    raise InvalidRequest(f'nil backend of type "{mount_type}" returned from factory')


def new_kv(options: Mapping[str, Any] | None, view: Backend, clock: Clock, *, mount_type: str = "kv") -> Engine:
    """The KV engine for a mount with these ``options`` over its storage ``view``."""
    if kv_version(options, mount_type=mount_type) == "2":
        return KVv2(view, clock)
    return KVv1(view, clock)
