"""Where a KV v2 mount keeps its secrets, and how reads and writes stay consistent.

Layout inside the mount's storage view (values are JSON bytes under the barrier):

``config``
    the mount-wide ``Config``.
``versions/<sha256(path)>/``
    one folder per secret: ``meta`` holds its ``KeyMetadata`` (with the
    metadata of every retained version), ``<n>`` holds ``{"data": ...}`` of
    version ``n`` when it is small enough that all retained versions of that
    size fit in ``FOLDER_BUDGET`` bytes.  A read of a version (``read_version``)
    reads ``meta``, then the version's own key: two keys, which the node's
    read cache (storage/cache.py) holds as two entries, while a cached folder
    would hold every retained version (ten by default) for the one that is
    read (bench/README.md: ~5 KiB of a worker's memory per secret served).
    A version's data never changes once written, so the pair is consistent
    unless the version was pruned or destroyed between the two reads; then
    the read starts again from one ``get_prefix`` of the folder, one snapshot
    of the metadata and the data it describes (as a patch reads).  Only
    ``meta`` and the version asked for are decrypted.  The hash keeps one
    secret's keys in a folder that cannot overlap another's (``a`` vs ``a/1``),
    so deleting a secret is one transaction of a few deletes whatever its size.
``blobs/<sha256(path)>/<n>``
    the data of a larger version.  A folder read returns every version in the
    folder, and with large values that transfer (Consul base64-encodes them)
    costs more than a second round trip: a read of a large version is the
    folder read plus a ``get`` of its blob, so a folder stays small whatever
    the secret's size.  A version's data is never moved once written.
``paths/<path>``
    an empty entry per secret, written in the transaction that creates its
    ``meta`` and deleted with it: ``LIST metadata/<folder>/`` is a plain
    storage list of ``paths/<folder>/``.

Invariants: ``meta`` is the commit point.  Every change that touches more
than one key is one ``txn`` whose operations include the ``meta`` write, so a
failure leaves the previous state.

Concurrency: several processes (gunicorn workers, and in HA every node's
requests end up on the active node's workers) change the same secret with no
lock in common, so every read-modify-write of ``meta`` or ``config`` is
optimistic: the value is read with its modify index and the commit carries a
``check-index`` on it (``check-not-exists`` for a new secret).  A conflicting
commit writes nothing and the whole operation runs again from its reads —
``cas`` is re-validated against the fresh metadata — up to ``MAX_ATTEMPTS``
times (``VersionedStore.update``).  Two writers can therefore never both create
version N, nor both pass the same ``cas``.  Data that becomes unreachable (versions
pruned by ``max_versions`` or destroyed) is deleted in the same transaction
when it fits in ``MAX_TXN_OPS``; the rest follows in later transactions and
is, at worst, left unreachable.

Nothing is kept here between requests: several processes serve the same
mount, so the config and the metadata are re-read by every request (from the
node's read cache, storage/cache.py, while no write changed them).
"""

from __future__ import annotations

import functools
import hashlib
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from strongroom.engines.kv.model import Config, KeyMetadata, VersionMetadata, decode, encode
from strongroom.errors import StrongroomError
from strongroom.sdk.logical import Clock
from strongroom.storage import Backend, TxnOp, check_op
from strongroom.storage.retry import MAX_ATTEMPTS, PATIENCE, RETRY_DELAY, retry_on_conflict
from strongroom.timefmt import seconds_to_ns, to_ns

T = TypeVar("T")

CONFIG_KEY = "config"
VERSIONS_PREFIX = "versions/"
PATHS_PREFIX = "paths/"
META_NAME = "meta"
BLOBS_PREFIX = "blobs/"

# The version data a folder read may return (encoded, before encryption): a
# version goes to the folder when max_versions versions of its size fit, while one
# read of the folder still costs less than a second round trip (bench/README.md).
FOLDER_BUDGET = 40 * 1024

# Consul allows 64 operations per transaction; a fenced backend adds check-session
# and the change record (storage/changes.py).
MAX_TXN_OPS = 62


@dataclass
class Secret:
    """One secret as read from storage: what a handler decides on, and what its
    commit (``VersionedStore.commit_secret``) is checked against.

    ``meta`` is None when the secret does not exist.  ``index`` is the modify
    index of ``meta`` (0 when absent).  ``entries`` is the secret's folder when
    it was read whole (``VersionedStore.read``), keys relative to the mount,
    values decrypted on access; None when only ``meta`` was read.
    """

    path: str
    meta: KeyMetadata | None = None
    index: int = 0
    entries: Mapping[str, tuple[bytes, int]] | None = None


class FoundVersion(NamedTuple):
    """A version of a secret as ``VersionedStore.read_version`` found it: the
    secret as read, its metadata, the version's number and its metadata, and
    whether it is ``live`` (neither destroyed nor deleted when read) with its
    ``data`` then (None otherwise)."""

    secret: Secret
    meta: KeyMetadata
    number: int
    version: VersionMetadata
    live: bool = False
    data: Any = None


class PathLocks:
    """One lock per path, made when a writer asks for it and dropped when the
    last one lets go: memory in proportion to the paths being written, and no
    two paths share a lock.  Locks shared by a hash of the path (64 of them)
    made writes of different secrets wait for each other's commits: at 64
    connections on 64 secrets a tenth of the writes took over 50 ms (p99 154–172
    ms; 89 ms with a lock per path, bench/README.md)."""

    class _Entry:
        """A path's lock and how many writers hold or await it."""

        __slots__ = ("lock", "users")

        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.users = 0

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[str, PathLocks._Entry] = {}

    @contextmanager
    def hold(self, path: str) -> Iterator[None]:
        with self._guard:
            entry = self._held.get(path)
            if entry is None:
                entry = self._held[path] = PathLocks._Entry()
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._guard:
                entry.users -= 1
                if not entry.users:
                    del self._held[path]

    def __len__(self) -> int:
        """Paths with a writer holding or awaiting their lock."""
        return len(self._held)


class VersionedStore:
    """Storage access for one KV v2 mount, shared by its path handlers.

    ``view`` is the mount's storage view, ``clock`` a zero-argument callable
    returning an aware UTC datetime, ``rand`` a zero-argument callable returning
    a float in [0, 1) and ``sleep`` a callable taking seconds (both for the
    jittered pause between attempts of ``update``); ``folder_budget`` bounds the
    version data kept in a secret's folder (see the module docstring).

    Correctness across processes comes from the storage checks (see the module
    docstring); the per-path locks only keep writers of one process from
    conflicting with each other in storage.
    """

    def __init__(
        self,
        view: Backend,
        clock: Clock,
        *,
        max_txn_ops: int = MAX_TXN_OPS,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = MAX_ATTEMPTS,
        patience: float = PATIENCE,
        folder_budget: int = FOLDER_BUDGET,
    ):
        self.view = view
        self._folder_budget = folder_budget
        self._clock = clock
        self._max_txn_ops = max_txn_ops
        self._rand = rand
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._patience = patience
        self._locks = PathLocks()

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

    # --- keys -------------------------------------------------------------------

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def _digest(path: str) -> str:
        # Every operation on a secret names its folder several times.
        return hashlib.sha256(path.encode("utf-8")).hexdigest()

    def folder(self, path: str) -> str:
        """The storage folder holding everything of secret ``path``."""
        return f"{VERSIONS_PREFIX}{self._digest(path)}/"

    def meta_key(self, path: str) -> str:
        """The storage key of the metadata of secret ``path`` (the commit point)."""
        return self.folder(path) + META_NAME

    def version_key(self, path: str, number: int) -> str:
        """The storage key of version ``number`` of secret ``path`` in its folder."""
        return f"{self.folder(path)}{number}"

    def blob_key(self, path: str, number: int) -> str:
        """The storage key of version ``number`` of secret ``path`` when it is too large for the folder."""
        return f"{BLOBS_PREFIX}{self._digest(path)}/{number}"

    def data_keys(self, path: str, number: int, blob: bool | None = None) -> list[str]:
        """The keys to delete to remove the data of version ``number``: where it
        is (``blob``, from its metadata), or both places when that is not known."""
        if blob is None:
            return [self.version_key(path, number), self.blob_key(path, number)]
        return [self.blob_key(path, number) if blob else self.version_key(path, number)]

    # --- reads --------------------------------------------------------------------

    def read_config(self) -> Config:
        """The mount's config (defaults when never written)."""
        raw = self.view.get(CONFIG_KEY)
        return Config() if raw is None else Config.from_json(decode(raw))

    def load_config(self) -> tuple[Config, int]:
        """The mount's config and its modify index (0 when never written), for a
        read-modify-write guarded by ``guard_config``."""
        raw, index = self.view.get_with_index(CONFIG_KEY)
        return (Config() if raw is None else Config.from_json(decode(raw))), index

    def read(self, path: str) -> Secret:
        """Secret ``path`` with its whole folder (``entries``): one storage read.

        For reads of version data, and writes that need the current version."""
        return self._from_folder(path, self.view.get_prefix(self.folder(path)))

    def read_version(self, path: str, wanted: int) -> FoundVersion | None:
        """Version ``wanted`` of ``path`` (0: the current one) with its data when
        it is live, or None when the secret or that version is unknown.

        The metadata, then the version's own key (see the module docstring);
        when the data is gone although the metadata said the version was
        live, it was pruned or destroyed in between: the folder is read as one
        snapshot instead."""
        if not path or path.endswith("/"):
            return None
        secret = self._from_meta(path, self.view.get(self.meta_key(path)), 0)
        found = self._version_of(secret, wanted)
        if found is None or not found.live:
            return found
        secret, meta, number, version, _, _ = found
        raw = self._stored_data(path, number, version.blob)
        if raw is not None:
            return FoundVersion(secret, meta, number, version, True, decode(raw)["data"])
        secret = self.read(path)
        found = self._version_of(secret, wanted)
        if found is None or not found.live:
            return found
        return FoundVersion(
            secret, found.meta, found.number, found.version, True, self.version_data(secret, found.number)
        )

    def _version_of(self, secret: Secret, wanted: int) -> FoundVersion | None:
        """Version ``wanted`` (0: the current one) of ``secret`` as read, its data not read yet."""
        if secret.meta is None:
            return None
        number = wanted if wanted > 0 else secret.meta.current_version
        version = secret.meta.versions.get(number)
        if version is None:
            return None
        live = not (version.destroyed or version.is_deleted(self.now()))
        return FoundVersion(secret, secret.meta, number, version, live)

    def _stored_data(self, path: str, number: int, blob: bool | None) -> bytes | None:
        """The stored data of a version, where its metadata says it is (both places when unknown)."""
        if blob:
            return self.view.get(self.blob_key(path, number))
        raw = self.view.get(self.version_key(path, number))
        if raw is None and blob is None:
            raw = self.view.get(self.blob_key(path, number))
        return raw

    def load(self, path: str) -> Secret:
        """Secret ``path``'s metadata and modify index, without version data:
        for metadata reads and the read-modify-writes that need no data."""
        return self._from_meta(path, *self.view.get_with_index(self.meta_key(path)))

    def exists(self, path: str) -> bool:
        """Whether secret ``path`` has metadata (decides create vs update for the ACL)."""
        return bool(path) and self.load(path).meta is not None

    def version_data(self, secret: Secret, number: int) -> Any:
        """The data of a version the metadata says is retained and not destroyed:
        from the folder as read, else from its blob (one more storage read)."""
        key = self.version_key(secret.path, number)
        if secret.entries is not None:
            found = secret.entries.get(key)
            raw = None if found is None else found[0]
        else:
            raw = self.view.get(key)
        if raw is None:
            raw = self.view.get(self.blob_key(secret.path, number))
        if raw is None:
            raise StrongroomError("could not find version data")
        return decode(raw)["data"]

    def list_metadata(self, folder: str) -> list[str]:
        """Vault-style children of ``folder`` (``""`` or ending in ``/``) among the secret paths."""
        return self.view.list(PATHS_PREFIX + folder)

    def _from_folder(self, path: str, entries: Mapping[str, tuple[bytes, int]]) -> Secret:
        found = entries.get(self.meta_key(path))
        if found is None:
            return Secret(path, entries=entries)
        raw, index = found
        return Secret(path, KeyMetadata.from_json(decode(raw)), index, entries=entries)

    @staticmethod
    def _from_meta(path: str, raw: bytes | None, index: int) -> Secret:
        if raw is None:
            return Secret(path)
        return Secret(path, KeyMetadata.from_json(decode(raw)), index)

    # --- writes -------------------------------------------------------------------

    def config_op(self, config: Config) -> TxnOp:
        """The transaction operation writing ``config``."""
        return TxnOp("set", CONFIG_KEY, encode(config.to_json()))

    @staticmethod
    def guard_config(index: int) -> TxnOp:
        """The check that the config is still the one ``load_config`` returned with ``index``."""
        return check_op(CONFIG_KEY, index)

    def version_op(self, path: str, number: int, data: Any, *, retained: int) -> tuple[TxnOp, bool]:
        """The transaction operation writing the data of a version, and whether
        it is a blob: in the folder when ``retained`` versions of its size fit
        in the folder's budget, else as a blob."""
        value = encode({"data": data})
        in_folder = len(value) * retained <= self._folder_budget
        return TxnOp(
            "set", self.version_key(path, number) if in_folder else self.blob_key(path, number), value
        ), not in_folder

    def secret_ops(self, secret: Secret, meta: KeyMetadata, ops: Iterable[TxnOp] = ()) -> list[TxnOp]:
        """The transaction committing ``meta`` as the new state of ``secret``:
        checks that the secret is still as read, ``ops`` (version data), the
        metadata, and the LIST entry of a new secret."""
        meta_key = self.meta_key(secret.path)
        txn = [check_op(meta_key, secret.index), *ops, TxnOp("set", meta_key, encode(meta.to_json()))]
        if secret.meta is None:
            txn.append(TxnOp("set", PATHS_PREFIX + secret.path, b""))
        return txn

    def commit_secret(
        self, secret: Secret, meta: KeyMetadata, ops: Iterable[TxnOp] = (), garbage: Iterable[str] = ()
    ) -> tuple[int, list[str]]:
        """Commit ``meta`` (and ``ops``) over ``secret`` as read, with ``garbage``
        deletes (see ``commit``); ``WriteConflict`` when the secret changed since."""
        return self.commit(self.secret_ops(secret, meta, ops), garbage)

    def delete_key_ops(self, path: str) -> list[TxnOp]:
        """Remove a secret: its LIST entry, folder and blobs (orphans included)."""
        return [
            TxnOp("delete", PATHS_PREFIX + path),
            TxnOp("delete-tree", self.folder(path)),
            TxnOp("delete-tree", f"{BLOBS_PREFIX}{self._digest(path)}/"),
        ]

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
            chunk = rest[start : start + self._max_txn_ops]
            try:
                index = self.view.txn([TxnOp("delete", key) for key in chunk])
            except StrongroomError:
                warnings.append(
                    f"error occurred when removing {len(rest) - start} unreachable version(s) "
                    "from storage; they are no longer readable"
                )
                break
        return index, warnings

    def lock(self, path: str) -> AbstractContextManager[None]:
        """The in-process lock ordering read-modify-write cycles on ``path`` (its own:
        writers of other paths never wait for it)."""
        return self._locks.hold(path)

    def update(self, path: str, attempt: Callable[[], T], *, what: str | None = None) -> T:
        """Run the read-modify-write ``attempt`` until it commits without a conflict.

        ``attempt`` must do all its reads (``load``, ``read``, ``load_config``), its
        validation and its guarded commit; on ``WriteConflict`` it runs again from
        scratch after a short random pause, at least ``max_attempts`` times and for
        ``patience`` seconds (``storage.retry``), then ``StorageUnavailable``
        (503, which clients retry) is raised.  ``path`` picks the in-process
        lock and, with ``what``, names the contended key."""
        with self.lock(path):
            return retry_on_conflict(
                attempt,
                max_attempts=self._max_attempts,
                sleep=self._sleep,
                jitter=self._rand,
                delay=RETRY_DELAY,
                patience=self._patience,
                give_up_message=f"too many concurrent writes to {what or repr(path)}; try again",
            )
