"""The transit engine's path table (Vault's ``builtin/logical/transit`` backend).

https://openbao.org/api-docs/secret/transit/
"""

from __future__ import annotations

import os

from strongroom.engines.transit.base import PathGroup
from strongroom.engines.transit.path_backup import BackupPath
from strongroom.engines.transit.path_cache_config import CacheConfigPath
from strongroom.engines.transit.path_config import ConfigPath
from strongroom.engines.transit.path_datakey import DatakeyPath
from strongroom.engines.transit.path_decrypt import DecryptPath
from strongroom.engines.transit.path_encrypt import EncryptPath
from strongroom.engines.transit.path_export import ExportPath
from strongroom.engines.transit.path_hash import HashPath
from strongroom.engines.transit.path_hmac import HmacPath
from strongroom.engines.transit.path_import import ImportPath
from strongroom.engines.transit.path_keys import KeysPath
from strongroom.engines.transit.path_random import RandomPath
from strongroom.engines.transit.path_rewrap import RewrapPath
from strongroom.engines.transit.path_rotate import RotatePath
from strongroom.engines.transit.path_sign import SignPath
from strongroom.engines.transit.policy import RandomBytes
from strongroom.engines.transit.store import KeyStore
from strongroom.sdk import framework
from strongroom.sdk.logical import Clock
from strongroom.storage import Backend

GROUPS: tuple[type[PathGroup], ...] = (
    ConfigPath,
    RotatePath,
    KeysPath,
    EncryptPath,
    DecryptPath,
    RewrapPath,
    DatakeyPath,
    HmacPath,
    SignPath,
    RandomPath,
    HashPath,
    ExportPath,
    BackupPath,
    CacheConfigPath,
    ImportPath,
)


class Transit(framework.Backend):
    """The ``Engine`` of a ``transit`` mount over its storage ``view`` (the barrier view of the mount).

    Stateless apart from storage: every request reads its key (the store keeps
    only the parsed form of bytes it read, checked against each read), so any
    number of processes and nodes serve the same mount and a rotation is seen by
    the next request everywhere storage shows it.  ``random_bytes`` is the source of key material and nonces."""

    def __init__(self, view: Backend, clock: Clock, *, random_bytes: RandomBytes = os.urandom):
        self.store = KeyStore(view)
        paths = [path for group in GROUPS for path in group(self.store, clock, random_bytes).paths()]
        super().__init__(paths)
