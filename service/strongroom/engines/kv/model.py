"""The KV v2 storage model: mount config, key metadata, version data.

Layout inside the mount's storage view (values are JSON bytes under the barrier):

``config``
    the mount-wide ``Config``.
``metadata/<path>``
    one ``KeyMetadata`` per secret path, with the metadata of every retained
    version.  Keys keep the secret's path so ``LIST metadata/<folder>/`` is a
    plain storage list.
``versions/<sha256(path)>/<n>``
    ``{"data": ...}`` of version ``n``.  The hash keeps one key's versions in
    one folder that cannot overlap another key's (``a`` vs ``a/1``), so deleting
    a key is a single ``delete-tree``.

Invariants: the metadata is the commit point.  Every change that touches more
than one key is one ``txn`` whose operations include the metadata write, so a
failure leaves the previous state.

Concurrency: several processes (gunicorn workers, and in HA every node's
requests end up on the active node's workers) change the same key with no lock
in common, so every read-modify-write of ``metadata/<path>`` or ``config`` is
optimistic: the value is read with its modify index and the commit carries a
``check-index`` on it (``check-not-exists`` for a new key).  A conflicting
commit writes nothing and the whole operation runs again from its reads —
``cas`` is re-validated against the fresh metadata — up to ``MAX_ATTEMPTS``
times (``VersionedStore.update``).  Two writers can therefore never both create
version N, nor both pass the same ``cas``.  Data that becomes unreachable (versions
pruned by ``max_versions`` or destroyed) is deleted in the same transaction
when it fits in ``MAX_TXN_OPS``; the rest follows in later transactions and
is, at worst, left unreachable.

Nothing is cached between requests: several processes serve the same mount,
so the config and the metadata are re-read by every request.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, TypeVar

from strongroom.engines.kv.timefmt import format_duration, format_time, seconds_to_ns, to_ns
from strongroom.errors import StorageUnavailable, StrongroomError
from strongroom.storage import TxnOp, WriteConflict, check_op

T = TypeVar("T")

CONFIG_KEY = "config"
METADATA_PREFIX = "metadata/"
VERSIONS_PREFIX = "versions/"

# Vault keeps 10 versions unless the key or the mount says otherwise.
DEFAULT_MAX_VERSIONS = 10
# Consul allows 64 operations per transaction; a fenced backend adds check-session.
MAX_TXN_OPS = 63
# Stored in Config.delete_version_after when a negative duration disabled it.
DELETE_VERSION_AFTER_DISABLED = -1
# Attempts of one read-modify-write before giving up with StorageUnavailable.
MAX_ATTEMPTS = 10
# Upper bound of the random pause after the first conflict (seconds); grows linearly per attempt.
RETRY_DELAY = 0.002


def encode(value: Any) -> bytes:
    """Compact JSON bytes, as every KV value is stored."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode(raw: bytes) -> Any:
    """The value of stored JSON bytes."""
    return json.loads(raw.decode("utf-8"))


@dataclass
class Config:
    """The mount-wide settings of ``<mount>/config``."""

    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0

    @property
    def delete_version_after_disabled(self) -> bool:
        return self.delete_version_after < 0

    def render(self) -> dict:
        """The body of ``GET <mount>/config``."""
        return {
            "cas_required": self.cas_required,
            "delete_version_after": format_duration(self.delete_version_after),
            "max_versions": self.max_versions,
        }

    def to_json(self) -> dict:
        """The stored form."""
        return {"max_versions": self.max_versions, "cas_required": self.cas_required,
                "delete_version_after": self.delete_version_after}

    @classmethod
    def from_json(cls, raw: dict) -> "Config":
        """From the stored form."""
        return cls(max_versions=int(raw.get("max_versions", 0)), cas_required=bool(raw.get("cas_required", False)),
                   delete_version_after=int(raw.get("delete_version_after", 0)))


@dataclass
class VersionMetadata:
    """What the metadata keeps of one version (times in ns since the epoch)."""

    created_time: int
    deletion_time: int | None = None
    destroyed: bool = False

    def is_deleted(self, now: int) -> bool:
        """Soft-deleted: its deletion time (explicit or from delete_version_after) has come."""
        return self.deletion_time is not None and self.deletion_time <= now

    def render(self) -> dict:
        """The per-version entry of a metadata read."""
        return {"created_time": format_time(self.created_time), "deletion_time": format_time(self.deletion_time),
                "destroyed": self.destroyed}


@dataclass
class KeyMetadata:
    """The metadata of one secret path (``metadata/<path>``)."""

    path: str
    versions: dict[int, VersionMetadata] = field(default_factory=dict)
    current_version: int = 0
    oldest_version: int = 0
    created_time: int | None = None
    updated_time: int | None = None
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0
    custom_metadata: dict[str, str] | None = None

    def add_version(self, created: int, deletion: int | None, config_max_versions: int) -> tuple[VersionMetadata, list[int]]:
        """Append a version and slide the ``max_versions`` window (Vault's AddVersion).

        The limit is the larger of the key's and the mount's ``max_versions``,
        else 10.  Returns the new version and the numbers of the pruned versions
        whose data is still stored."""
        version = VersionMetadata(created_time=created, deletion_time=deletion)
        self.current_version += 1
        self.versions[self.current_version] = version
        self.updated_time = created
        if self.created_time is None:
            self.created_time = created
        limit = max(self.max_versions, config_max_versions) or DEFAULT_MAX_VERSIONS
        pruned: list[int] = []
        if self.current_version - self.oldest_version >= limit:
            last_to_delete = self.current_version - limit
            for number in sorted(n for n in self.versions if n <= last_to_delete):
                if not self.versions.pop(number).destroyed:
                    pruned.append(number)
            self.oldest_version = last_to_delete + 1
        return version, pruned

    def version_summary(self, number: int) -> dict:
        """The per-version shape of data writes and of ``metadata`` in data reads."""
        version = self.versions[number]
        return {
            "created_time": format_time(version.created_time),
            "custom_metadata": self.custom_metadata,
            "deletion_time": format_time(version.deletion_time),
            "destroyed": version.destroyed,
            "version": number,
        }

    def render(self) -> dict:
        """The body of ``GET <mount>/metadata/<path>``."""
        return {
            "cas_required": self.cas_required,
            "created_time": format_time(self.created_time),
            "current_version": self.current_version,
            "custom_metadata": self.custom_metadata,
            "delete_version_after": format_duration(self.delete_version_after),
            "max_versions": self.max_versions,
            "oldest_version": self.oldest_version,
            "updated_time": format_time(self.updated_time),
            "versions": {str(n): v.render() for n, v in sorted(self.versions.items())},
        }

    def to_json(self) -> dict:
        """The stored form (versions as ``[created, deletion, destroyed]``)."""
        return {
            "path": self.path,
            "current_version": self.current_version,
            "oldest_version": self.oldest_version,
            "created_time": self.created_time,
            "updated_time": self.updated_time,
            "max_versions": self.max_versions,
            "cas_required": self.cas_required,
            "delete_version_after": self.delete_version_after,
            "custom_metadata": self.custom_metadata,
            "versions": {str(n): [v.created_time, v.deletion_time, v.destroyed] for n, v in self.versions.items()},
        }

    @classmethod
    def from_json(cls, raw: dict) -> "KeyMetadata":
        """From the stored form."""
        return cls(
            path=raw["path"],
            versions={int(n): VersionMetadata(created_time=v[0], deletion_time=v[1], destroyed=v[2])
                      for n, v in raw.get("versions", {}).items()},
            current_version=raw.get("current_version", 0),
            oldest_version=raw.get("oldest_version", 0),
            created_time=raw.get("created_time"),
            updated_time=raw.get("updated_time"),
            max_versions=raw.get("max_versions", 0),
            cas_required=raw.get("cas_required", False),
            delete_version_after=raw.get("delete_version_after", 0),
            custom_metadata=raw.get("custom_metadata"),
        )


class VersionedStore:
    """Storage access for one KV v2 mount, shared by its path handlers.

    ``view`` is the mount's storage view, ``clock`` a zero-argument callable
    returning an aware UTC datetime, ``rand`` a zero-argument callable returning
    a float in [0, 1) and ``sleep`` a callable taking seconds (both for the
    jittered pause between attempts of ``update``).

    Correctness across processes comes from the storage checks (see the module
    docstring); the per-path locks only keep writers of one process from
    conflicting with each other in storage.
    """

    def __init__(self, view, clock: Callable, *, max_txn_ops: int = MAX_TXN_OPS,
                 rand: Callable[[], float] = random.random, sleep: Callable[[float], None] = time.sleep,
                 max_attempts: int = MAX_ATTEMPTS):
        self.view = view
        self._clock = clock
        self._max_txn_ops = max_txn_ops
        self._rand = rand
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._locks = [threading.Lock() for _ in range(64)]

    # --- time -------------------------------------------------------------------

    def now(self) -> int:
        """The clock, in ns since the epoch."""
        return to_ns(self._clock())

    def deletion_time(self, start: int, config: Config, meta: KeyMetadata) -> int | None:
        """When a version created (or undeleted) at ``start`` is deleted by ``delete_version_after``:
        the smaller non-zero of the mount's and the key's setting, none when the mount disabled it."""
        if config.delete_version_after_disabled:
            return None
        candidates = [d for d in (config.delete_version_after, meta.delete_version_after) if d > 0]
        if not candidates:
            return None
        return start + seconds_to_ns(min(candidates))

    # --- reads --------------------------------------------------------------------

    def read_config(self) -> Config:
        """The mount's config (defaults when never written)."""
        raw = self.view.get(CONFIG_KEY)
        return Config() if raw is None else Config.from_json(decode(raw))

    def read_metadata(self, path: str) -> KeyMetadata | None:
        """The metadata of secret ``path``, None when the key does not exist."""
        raw = self.view.get(METADATA_PREFIX + path)
        return None if raw is None else KeyMetadata.from_json(decode(raw))

    def load_config(self) -> tuple[Config, int]:
        """The mount's config and its modify index (0 when never written), for a
        read-modify-write guarded by ``guard_config``."""
        raw, index = self.view.get_with_index(CONFIG_KEY)
        return (Config() if raw is None else Config.from_json(decode(raw))), index

    def load_metadata(self, path: str) -> tuple[KeyMetadata | None, int]:
        """The metadata of ``path`` (None when the key does not exist) and its
        modify index (0 then), for a read-modify-write guarded by ``guard_metadata``."""
        raw, index = self.view.get_with_index(METADATA_PREFIX + path)
        return (None if raw is None else KeyMetadata.from_json(decode(raw))), index

    def read_version(self, path: str, number: int) -> Any:
        """The data of a version the metadata says is retained and not destroyed."""
        raw = self.view.get(self.version_key(path, number))
        if raw is None:
            raise StrongroomError("could not find version data")
        return decode(raw)["data"]

    def list_metadata(self, folder: str) -> list[str]:
        """Vault-style children of ``folder`` (``""`` or ending in ``/``) among the secret paths."""
        return self.view.list(METADATA_PREFIX + folder)

    # --- writes -------------------------------------------------------------------

    @staticmethod
    def _digest(path: str) -> str:
        return hashlib.sha256(path.encode("utf-8")).hexdigest()

    def version_key(self, path: str, number: int) -> str:
        """The storage key of version ``number`` of secret ``path``."""
        return f"{VERSIONS_PREFIX}{self._digest(path)}/{number}"

    def config_op(self, config: Config) -> TxnOp:
        """The transaction operation writing ``config``."""
        return TxnOp("set", CONFIG_KEY, encode(config.to_json()))

    def metadata_op(self, meta: KeyMetadata) -> TxnOp:
        """The transaction operation writing ``meta``."""
        return TxnOp("set", METADATA_PREFIX + meta.path, encode(meta.to_json()))

    @staticmethod
    def guard_config(index: int) -> TxnOp:
        """The check that the config is still the one ``load_config`` returned with ``index``."""
        return check_op(CONFIG_KEY, index)

    @staticmethod
    def guard_metadata(path: str, index: int) -> TxnOp:
        """The check that the metadata of ``path`` is still the one ``load_metadata``
        returned with ``index`` (still absent for 0)."""
        return check_op(METADATA_PREFIX + path, index)

    def version_op(self, path: str, number: int, data: Any) -> TxnOp:
        """The transaction operation writing the data of a version."""
        return TxnOp("set", self.version_key(path, number), encode({"data": data}))

    def delete_key_ops(self, path: str) -> list[TxnOp]:
        """Remove a key's metadata and every stored version, orphans included."""
        return [TxnOp("delete", METADATA_PREFIX + path),
                TxnOp("delete-tree", f"{VERSIONS_PREFIX}{self._digest(path)}/")]

    def commit(self, ops: list[TxnOp], garbage: Iterable[str] = ()) -> tuple[int, list[str]]:
        """Apply ``ops`` atomically, with as many ``garbage`` deletes as fit.

        ``garbage`` holds keys the committed metadata no longer references;
        those that do not fit follow in further transactions, and a failure
        there only leaves unreachable data (reported as a warning).  Returns the
        storage index after the last write and any warnings.  ``WriteConflict``
        from a check in ``ops`` propagates (nothing was written)."""
        garbage = list(garbage)
        room = max(self._max_txn_ops - len(ops), 0)
        index = self.view.txn(list(ops) + [TxnOp("delete", key) for key in garbage[:room]])
        warnings: list[str] = []
        rest = garbage[room:]
        for start in range(0, len(rest), self._max_txn_ops):
            chunk = rest[start:start + self._max_txn_ops]
            try:
                index = self.view.txn([TxnOp("delete", key) for key in chunk])
            except StrongroomError:
                warnings.append(f"error occurred when removing {len(rest) - start} unreachable version(s) "
                                "from storage; they are no longer readable")
                break
        return index, warnings

    def lock(self, path: str) -> threading.Lock:
        """The in-process lock ordering read-modify-write cycles on ``path``."""
        return self._locks[int(self._digest(path)[:8], 16) % len(self._locks)]

    def update(self, path: str, attempt: Callable[[], T], *, what: str | None = None) -> T:
        """Run the read-modify-write ``attempt`` until it commits without a conflict.

        ``attempt`` must do all its reads (with ``load_*``), its validation and
        its guarded ``commit``; on ``WriteConflict`` it runs again from scratch
        after a short random pause, at most ``max_attempts`` times in all, then
        ``StorageUnavailable`` (503, which clients retry) is raised.  ``path``
        picks the in-process lock and, with ``what``, names the contended key."""
        with self.lock(path):
            for number in range(1, self._max_attempts + 1):
                try:
                    return attempt()
                except WriteConflict:
                    if number == self._max_attempts:
                        break
                    self._sleep(self._rand() * RETRY_DELAY * number)
        raise StorageUnavailable(f"too many concurrent writes to {what or repr(path)}; try again")
