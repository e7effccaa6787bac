"""The KV secrets engine, versions 1 and 2.

https://developer.hashicorp.com/vault/docs/secrets/kv

``new_kv`` picks the version from the mount's ``options["version"]`` as Vault's
``kv.Factory`` does: ``"1"`` or absent gives ``KVv1``, ``"2"`` gives ``KVv2``,
anything else is refused.  One file per path group (``path_data.py``,
``path_metadata.py``, ...), the v2 data model in ``model.py`` and its storage
layout and concurrency in ``store.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from strongroom.engines.kv.v1 import KVv1
from strongroom.engines.kv.v2 import KVv2
from strongroom.errors import InvalidRequest

__all__ = ["KVv1", "KVv2", "new_kv"]


def new_kv(options: dict, view, clock: Callable, *, mount_type: str = "kv"):
    """The KV engine for a mount with these ``options`` over its storage ``view``."""
    version = str((options or {}).get("version", "") or "")
    if version in ("", "1"):
        return KVv1(view, clock)
    if version == "2":
        return KVv2(view, clock)
    raise InvalidRequest(f'nil backend of type "{mount_type}" returned from factory')
