"""The change log: how a performance standby caches reads without a Consul call per read.

The active node's cache (storage/cache.py) is coherent because the node's own
processes are the only writers.  A performance standby sees none of those
writes, so it learns of them from the *change log*: every fenced write of the
active node carries, in the same Consul transaction, one more ``set`` of a
record ``changes/<random id>`` whose value names the storage keys the
transaction writes (``*<prefix>`` for a deleted tree).  The record commits
with the write or not at all, and its ``ModifyIndex`` is the write's commit
index, the ``X-Vault-Index`` the client got.

A standby's node core follows the prefix (``ChangeFollower``) with a blocking
query on its keys.  Each answer lists every record not yet pruned, in one
consistent snapshot, and its ``X-Consul-Index`` is the highest index among
them (and their tombstones): every record up to that index is listed.  The
follower reads the values of the records it has not listed before (records
are written once and never change, only pruned) and the mark, bumps the slots
of the keys they name in the node's ``CoherenceTable`` (as a local write
would), then publishes the index as *applied*.  An answer carries keys only:
with every record's value in each answer, one following standby more than
doubled Consul's CPU per write.  Workers then serve cached ciphertext while

* the table's following epoch is unchanged: a new one is taken when the
  follower starts, when the feed errors (Consul gone or restarted), when the
  index goes backwards, and when records it had not yet seen were pruned
  (the mark says so, or a new record is gone before it was read); the node
  becoming active or being sealed ends it too;
* the follower's lease runs: an answer renews it until ``FOLLOW_LEASE``
  after the follower *asked* for it (not after it arrived), and the
  follower asks again at least every blocking wait (``wait`` < half the
  lease), so a follower whose query hangs (a partition, a stalled node
  core) stops serving by itself within the lease;
* a request carrying ``X-Vault-Index`` is at or below the applied index
  (storage/consistency.py); a newer one reads Consul, as every read did
  before.

Pruning (``ChangePruner``, on the active node): records first listed by the
pruner a second ago are deleted in fenced transactions that also set
``changes/~pruned`` to the log index of that listing, at or above the
records' own.  A follower that finds that mark above its position may have
missed a record, and takes a new epoch: its whole cache is dropped, never
served stale.

Revocations are seen at once: a standby serves nothing, a token's record
included, on the strength of an answer it asked for more than
``FOLLOW_LEASE`` ago, and the active node answers a revocation only
``SETTLE`` (a little more) after it committed (auth/token_store.py).  An
answer asked for after the commit lists its record (default consistency:
the leader answers, with every commit it acknowledged); one asked for
before it has expired by the time the client hears of the revocation.
This needs no clock shared between hosts, only clocks that run at the same
rate.

Reads a standby never caches: the keys the node core watches itself
(``core/``, mount and auth tables, policies, audit devices, see
core/invalidation.py; a worker re-reads them when told, which may be before
the log arrives) and the log itself.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from strongroom.errors import StrongroomError
from strongroom.storage import WRITE_VERBS, Backend, TxnOp
from strongroom.storage.coherence import CoherenceTable

log = logging.getLogger("strongroom.changes")

PREFIX = "changes/"
PRUNED_KEY = PREFIX + "~pruned"
#: A record line naming a deleted tree: every cached entry goes.
TREE = "*"
#: Keys a following standby never serves from its cache (see the module docstring).
UNCACHED = ("core/", "sys/mounts", "sys/auth", "sys/policy/", "sys/audit/", PREFIX)
#: How long after it asked for the last answer it applied a standby still
#: serves its cache (see the module docstring): the hard bound of its stale
#: reads, and what a revocation waits on the active node.
FOLLOW_LEASE = 0.15
#: What a revocation waits after its commit before it is answered, when
#: performance standbys may follow: the lease and a margin for the hosts'
#: clock rates and the standby's check of its clock.
SETTLE = FOLLOW_LEASE + 0.01
#: Deletes per pruning transaction (the fence and the mark make 62 of Consul's 64).
PRUNE_BATCH = 60


def record_op(ops: Sequence[TxnOp]) -> TxnOp | None:
    """The change record for a fenced transaction of ``ops`` (None: it writes nothing to record)."""
    keys = [
        TREE + op.key if op.verb == "delete-tree" else op.key
        for op in ops
        if op.verb in WRITE_VERBS and not op.key.startswith(PREFIX)
    ]
    if not keys:
        return None
    return TxnOp("set", PREFIX + os.urandom(16).hex(), "\n".join(keys).encode())


def parse_record(value: bytes) -> tuple[list[str], bool]:
    """(keys written, whether a tree was deleted) from a record's value."""
    keys, flush = [], False
    for line in value.decode(errors="replace").split("\n"):
        if line.startswith(TREE):
            flush = True
        elif line:
            keys.append(line)
    return keys, flush


class ChangeFeed(Protocol):
    """The change log in storage (``storage/consul_changes.py``): reads only, no fence."""

    def wait(self, index: int, wait: str) -> tuple[int, list[str]]:
        """Block until the log changes after ``index`` (0: answer at once) or
        ``wait`` passes; returns the log's index and the key of every record
        (and of the mark), as ``Backend.get`` takes them.  Raises
        ``StorageUnavailable`` when storage cannot answer."""

    def read(self, keys: Sequence[str]) -> dict[str, bytes] | None:
        """The values at ``keys`` (records, the mark); None when one is gone.
        Raises ``StorageUnavailable`` when storage cannot answer."""


class ChangeFollower:
    """A performance standby's node core following the log into its ``CoherenceTable``.

    ``start()`` (the node became a performance standby) and ``stop()`` (it
    became anything else, or closes) may be called from any thread; each start
    runs a new thread, and a stopped thread never touches the table again."""

    def __init__(
        self,
        feed: ChangeFeed,
        table: CoherenceTable,
        *,
        wait: float = 0.04,
        lease: float = FOLLOW_LEASE,
        clock: Callable[[], float] = time.monotonic,
        retry: float = 0.2,
        pace: float = 0.02,
    ) -> None:
        self._feed = feed
        self._table = table
        self._wait = wait
        # Every answer lists every record not yet pruned: under a steady
        # stream of writes, asking again at once would make Consul list them
        # all for each write.  Waiting ``pace`` seconds between questions lets
        # one answer cover the writes of that time (it adds at most that much
        # to the stale-read window): 20 ms halved a following standby's CPU
        # per write against 10 ms (167 → 85 µs, with the log kept 1 s).
        # Revocations do not depend on it: they wait for the lease.
        self._pace = pace
        # An idle log answers after ``wait`` (plus Consul's jitter, wait/16),
        # and the answer must come within the lease of the previous question:
        # two waits fit in it with room for round trips and a busy host.
        if not 2 * wait * 17 / 16 < lease:
            raise ValueError(f"a blocking wait of {wait} s does not renew a lease of {lease} s")
        self._lease = lease
        self._clock = clock
        self._retry = retry
        self._lock = threading.Lock()
        self._generation = 0
        self._running = False
        self._epoch = 0
        self._position = 0
        #: The records listed in the last answer: a record not among them is new.
        self._seen: set[str] = set()
        #: Epochs begun after a gap (feed error, pruned records, index backwards), for tests and metrics.
        self.restarts = 0

    @property
    def position(self) -> int:
        """The log index applied (0: not following)."""
        return self._position if self._epoch else 0

    def start(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
            self._generation += 1
            generation = self._generation
        threading.Thread(target=self._run, args=(generation,), name="change-follower", daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            self._running = False
            self._generation += 1
            self._drop()

    def _drop(self) -> None:
        """Nothing cached is served any more (callers hold the lock)."""
        if self._epoch:
            self._table.stop_following(self._epoch)
        self._epoch = 0

    def _run(self, generation: int) -> None:
        index, asked = 0, 0.0
        while True:
            with self._lock:
                if generation != self._generation:
                    return
            pause = asked + self._pace - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            asked = time.monotonic()
            try:
                lease_from = self._clock()  # before the question leaves: see FOLLOW_LEASE
                new_index, keys = self._feed.wait(index, f"{self._wait:g}s")
                if not self.answer(generation, new_index, keys, lease_from):
                    return
            except StrongroomError as exc:
                log.warning("change log unavailable, standby cache dropped: %s", exc)
                with self._lock:
                    if generation != self._generation:
                        return
                    self._drop()
                index = 0
                time.sleep(self._retry)
                continue
            except Exception:
                log.exception("change follower failed; standby cache dropped")
                with self._lock:
                    if generation == self._generation:
                        self._drop()
                index = 0
                time.sleep(self._retry)
                continue
            index = new_index

    def answer(self, generation: int, index: int, listed: Sequence[str], asked: float | None = None) -> bool:
        """Apply one answer of the feed: log ``index`` and the keys it lists,
        to a question sent at ``asked`` (the follower's clock; None: now).
        The records this follower has not seen are read (with the mark), then
        applied; False once ``generation`` is stopped.  Public for tests that
        drive the follower by hand."""
        if asked is None:
            asked = self._clock()
        values: dict[str, bytes] | None = {}
        if self._epoch and index != self._position:
            new = [key for key in listed if key not in self._seen]
            values = self._feed.read(new) if new else {}
        return self._apply(generation, index, listed, values, asked)

    def _apply(
        self, generation: int, index: int, listed: Sequence[str], values: dict[str, bytes] | None, asked: float
    ) -> bool:
        """``values`` of the records (and the mark) read for this answer; None:
        one of them was pruned before it could be read."""
        with self._lock:
            if generation != self._generation:
                return False
            until = asked + self._lease
            pruned, keys, flush = 0, [], False
            for key, value in (values or {}).items():
                if key == PRUNED_KEY:
                    try:
                        pruned = int(value or b"0")
                    except ValueError:
                        pruned = index  # unreadable: assume the worst
                else:
                    named, tree = parse_record(value)
                    keys.extend(named)
                    flush = flush or tree
            if self._epoch and (values is None or index < self._position or pruned > self._position):
                log.warning(
                    "change log moved past this standby (position %d, log %d, pruned to %d): cache dropped",
                    self._position,
                    index,
                    pruned,
                )
                self._drop()
                self.restarts += 1
            if not self._epoch:
                self._epoch = self._table.begin_following(index, until)
            elif not self._table.apply_changes(self._epoch, keys, flush, index, until):
                self._epoch = 0  # the node changed role meanwhile; stop() follows
            self._position = index
            # The mark is read again whenever the log moves: it is not a record.
            self._seen = {key for key in listed if key != PRUNED_KEY}
            return True


class ChangePruner:
    """The active node's node core deleting old change records (see the module docstring).

    ``backend`` is the node core's fenced backend; ``is_active`` says whether
    the node leads (only the active node writes)."""

    def __init__(
        self,
        feed: ChangeFeed,
        backend: Backend,
        is_active: Callable[[], bool],
        *,
        retain: float = 1.0,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._feed = feed
        self._backend = backend
        self._is_active = is_active
        self._retain = retain
        self._interval = interval
        self._clock = clock
        #: Each record listed: when this pruner first listed it, and the log's index then.
        self._seen: dict[str, tuple[float, int]] = {}
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="change-pruner", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.prune_once()
            except StrongroomError as exc:  # lost the lock, Consul away: the next active prunes
                log.info("change log not pruned: %s", exc)
                self._seen.clear()
            except Exception:
                log.exception("pruning the change log failed")
                self._seen.clear()

    def prune_once(self) -> int:
        """Delete the records first listed at least ``retain`` ago; returns how many.

        A listing carries no record's own index, but a record first listed at
        log index ``i`` was written at or before ``i``: the mark is set to the
        highest such ``i`` deleted, which is at or above the records' own.  A
        follower whose position is below it lagged about ``retain`` behind and
        starts anew, as it would have to for a record it missed."""
        if not self._is_active():
            self._seen.clear()
            return 0
        now = self._clock()
        index, listed = self._feed.wait(0, "0s")
        current = set(listed)
        current.discard(PRUNED_KEY)
        self._seen = {key: self._seen.get(key, (now, index)) for key in current}
        old = sorted((seen_index, key) for key, (seen, seen_index) in self._seen.items() if seen <= now - self._retain)
        for start in range(0, len(old), PRUNE_BATCH):
            chunk = old[start : start + PRUNE_BATCH]
            ops = [TxnOp("delete", key) for _, key in chunk]
            ops.append(TxnOp("set", PRUNED_KEY, str(chunk[-1][0]).encode()))
            self._backend.txn(ops)
            for _, key in chunk:
                del self._seen[key]
        return len(old)
