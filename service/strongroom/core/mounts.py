"""Mount tables for secrets engines (``sys/mounts``) and auth methods (``sys/auth``).

https://developer.hashicorp.com/vault/api-docs/system/mounts

Each table is one JSON document stored through the barrier (``sys/mounts``,
``sys/auth``), so every change is a single atomic write.  A mount's data lives
under ``logical/<uuid>/`` (secrets) or ``auth/<uuid>/`` (auth methods); disabling
a mount removes the entry and its data in one transaction.  Tables are cached in
memory and re-read when the core is told they changed.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from strongroom import metrics
from strongroom.errors import InvalidRequest
from strongroom.storage import Backend, TxnOp, check_op
from strongroom.storage.retry import MAX_ATTEMPTS, RETRY_DELAY, retry_on_conflict

MOUNTS_PATH = "sys/mounts"
TOKEN_MOUNT_PATH = "token/"
AUTH_PATH = "sys/auth"

# Paths no secrets engine may take (Vault's protectedMounts plus what Strongroom serves itself).
RESERVED = ("sys/", "auth/", "cubbyhole/", "identity/", "audit/")


@dataclass
class MountEntry:
    """One mounted engine, in Vault's vocabulary."""

    path: str
    type: str
    uuid: str
    accessor: str
    description: str = ""
    config: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    local: bool = False
    seal_wrap: bool = False
    external_entropy_access: bool = False

    def render(self) -> dict:
        """The entry as Vault's ``GET sys/mounts`` shows it."""
        config: dict[str, Any] = {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": False}
        config.update(self.config)
        if self.type == "token":
            # The built-in token method, exactly as Vault lists it.
            config["token_type"] = "default-service"
            return {
                "accessor": self.accessor,
                "config": config,
                "description": self.description,
                "external_entropy_access": False,
                "local": False,
                "options": None,
                "plugin_version": "",
                "running_plugin_version": "v0.1.0+builtin.token",
                "running_sha256": "",
                "seal_wrap": False,
                "type": "token",
                "uuid": self.uuid,
            }
        return {
            "accessor": self.accessor,
            "config": config,
            "description": self.description,
            "external_entropy_access": self.external_entropy_access,
            "local": self.local,
            "options": self.options,
            "plugin_version": "",
            "running_plugin_version": f"v0.1.0+builtin.{self.type}",
            "running_sha256": "",
            "seal_wrap": self.seal_wrap,
            "type": self.type,
            "uuid": self.uuid,
            "deprecation_status": "supported",
        }


def normalize_path(path: str) -> str:
    """Mount paths are stored with exactly one trailing slash and no leading one."""
    path = (path or "").strip("/")
    if not path:
        raise InvalidRequest("path cannot be empty")
    if ".." in path.split("/"):
        raise InvalidRequest("path cannot contain '..'")
    return path + "/"


#: A change to the mount table: edits the entries (path -> entry) in place and
#: returns the storage operations that go with it in the same transaction.
TableChange = Callable[[dict[str, MountEntry]], list[TxnOp]]


class MountTable:
    """A cached, storage-backed mount table (``sys/mounts`` or ``sys/auth``).

    ``storage`` is the barrier; ``data_prefix`` is ``logical/`` or ``auth/``.
    Writers call ``add``/``remove``/``update`` (one atomic write each); readers
    call ``match``.  ``invalidate()`` drops the cache so the next read reloads it.
    ``randbytes(n)`` makes uuids and accessors and the jitter of the pause
    ``sleep(seconds)`` between attempts of a write that met a conflict.
    """

    def __init__(
        self,
        storage: Backend,
        key: str,
        data_prefix: str,
        defaults: Callable[[], list[MountEntry]] = list,
        randbytes: Callable[[int], bytes] = os.urandom,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._storage = storage
        self._key = key
        self._data_prefix = data_prefix
        self._defaults = defaults
        self._randbytes = randbytes
        self._sleep = sleep
        self._lock = threading.Lock()
        self._entries: dict[str, MountEntry] | None = None

    def invalidate(self) -> None:
        with self._lock:
            self._entries = None

    def entries(self) -> dict[str, MountEntry]:
        """path -> entry, loading from storage when the cache is empty."""
        with self._lock:
            metrics.inc(metrics.labelled(metrics.cache_total, self._key, "miss" if self._entries is None else "hit"))
            if self._entries is None:
                raw = self._storage.get(self._key)
                self._entries = self._defaults_by_path() if raw is None else self._decode(raw)
            return dict(self._entries)

    def store_defaults(self) -> bool:
        """Write the default table when storage holds none yet (True when written).

        The active node does it once (``server/nodecore.py``): the node core's
        watch on an absent table key would otherwise be woken by every token
        written under ``sys/`` (see ``core/invalidation.py``)."""
        if self._storage.get(self._key) is not None:
            return False
        self._modify(lambda entries: [])
        return True

    def match(self, path: str) -> MountEntry | None:
        """The mount with the longest path that prefixes ``path`` (``path`` may lack the trailing slash)."""
        candidate = path if path.endswith("/") else path + "/"
        best = None
        for mount_path, entry in self.entries().items():
            if candidate.startswith(mount_path) and (best is None or len(mount_path) > len(best.path)):
                best = entry
        return best

    def storage_prefix(self, entry: MountEntry) -> str:
        """Where a mount's data lives in the barrier."""
        return f"{self._data_prefix}{entry.uuid}/"

    def new_entry(
        self,
        path: str,
        type_: str,
        description: str = "",
        config: dict | None = None,
        options: dict | None = None,
        local: bool = False,
        seal_wrap: bool = False,
    ) -> MountEntry:
        return MountEntry(
            path=path,
            type=type_,
            uuid=str(uuid.UUID(bytes=self._randbytes(16))),
            accessor=f"{type_}_{self._randbytes(4).hex()}",
            description=description,
            config=dict(config or {}),
            options=dict(options or {}),
            local=local,
            seal_wrap=seal_wrap,
        )

    def add(self, entry: MountEntry) -> int:
        """Persist a new mount; refuses a path that overlaps an existing mount."""

        def change(entries: dict[str, MountEntry]) -> list[TxnOp]:
            for existing in entries:
                if existing.startswith(entry.path) or entry.path.startswith(existing):
                    raise InvalidRequest(f"path is already in use at {existing}")
            entries[entry.path] = entry
            return []

        return self._modify(change)

    def remove(self, path: str) -> tuple[MountEntry, int]:
        """Remove a mount and every value it stored, atomically."""
        removed: list[MountEntry] = []

        def change(entries: dict[str, MountEntry]) -> list[TxnOp]:
            entry = entries.pop(path, None)
            if entry is None:
                raise InvalidRequest(f"no matching mount at '{path}'")
            removed[:] = [entry]
            return [TxnOp("delete-tree", self.storage_prefix(entry))]

        index = self._modify(change)
        return removed[0], index

    def move(self, source: str, target: str) -> tuple[MountEntry, int]:
        """Give the mount at ``source`` the path ``target`` (``sys/remount``).  Its data
        stays where it is (under the mount's uuid), so the move is one table write."""
        moved: list[MountEntry] = []

        def change(entries: dict[str, MountEntry]) -> list[TxnOp]:
            entry = entries.pop(source, None)
            if entry is None:
                raise InvalidRequest(f'no matching mount at "{source}"')
            for existing in entries:
                if existing.startswith(target) or target.startswith(existing):
                    raise InvalidRequest(f'path already in use at "{existing}"')
            entries[target] = moved_entry = MountEntry(**{**asdict(entry), "path": target})
            moved[:] = [moved_entry]
            return []

        index = self._modify(change)
        return moved[0], index

    def update(self, entry: MountEntry) -> int:
        """Persist a changed entry (tune)."""

        def change(entries: dict[str, MountEntry]) -> list[TxnOp]:
            if entry.path not in entries:
                raise InvalidRequest(f"no matching mount at '{entry.path}'")
            entries[entry.path] = entry
            return []

        return self._modify(change)

    def _modify(self, change: TableChange, attempts: int = MAX_ATTEMPTS) -> int:
        """Read-modify-write of the table with a check on its index, so two writers
        (workers or nodes) never lose each other's change; retried on conflict after
        a random few milliseconds, so that contending writers spread out."""

        def attempt() -> int:
            raw, index = self._storage.get_with_index(self._key)
            entries = self._defaults_by_path() if raw is None else self._decode(raw)
            extra = change(entries)
            body = json.dumps([asdict(e) for e in sorted(entries.values(), key=lambda e: e.path)]).encode()
            written = self._storage.txn([check_op(self._key, index), TxnOp("set", self._key, body), *extra])
            with self._lock:
                self._entries = entries
            return written

        return retry_on_conflict(
            attempt,
            max_attempts=attempts,
            sleep=self._sleep,
            jitter=self._jitter,
            delay=RETRY_DELAY,
            give_up_message="too many concurrent changes to the mount table; try again",
        )

    def _jitter(self) -> float:
        """A float in [0, 1) from ``randbytes``, the table's one source of randomness."""
        return int.from_bytes(self._randbytes(2), "big") / 65536

    def _defaults_by_path(self) -> dict[str, MountEntry]:
        return {e.path: e for e in self._defaults()}

    @staticmethod
    def _decode(raw: bytes) -> dict[str, MountEntry]:
        return {d["path"]: MountEntry(**d) for d in json.loads(raw)}


def default_auth_mounts() -> list[MountEntry]:
    """The auth table of a new cluster: the token method alone, as in Vault."""
    return [
        MountEntry(
            path=TOKEN_MOUNT_PATH,
            type="token",
            uuid="token",
            accessor="auth_token_" + "00000000",
            description="token based credentials",
        )
    ]
