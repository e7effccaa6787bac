"""``auto_rotate_period`` acting: the active node rotates transit keys whose newest version is too old.

https://openbao.org/api-docs/secret/transit/#auto_rotate_period

Vault's transit backend has a periodic function (run by the core's rollback
manager about once a minute on the active node) that rotates every key whose
``auto_rotate_period`` is set and whose latest version was made longer ago
than that.  Here the node core runs ``TransitAutoRotation`` beside its other
loops: every ``period`` seconds, on the active node only, it reads the mount
table, and for each ``transit`` mount rotates the keys that are due.  Each
rotation is a check-and-set of the key (``KeyStore.update``) that looks again
at the stored key, so a rotation by hand or by another tick in between is
never doubled; the node core's writes are fenced by the lock like every write
of the active node, and announced to its workers' caches.

The mount table is read from its storage key directly (``sys/mounts``, data
under ``logical/<uuid>/``: the layout of ``core/mounts.py``, which this layer
may not import).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime

from strongroom.barrier.barrier import Barrier, BarrierView
from strongroom.engines.transit.policy import Policy, RandomBytes
from strongroom.engines.transit.store import KeyStore

log = logging.getLogger("strongroom.transit")

MOUNTS_KEY = "sys/mounts"
DATA_PREFIX = "logical/"
TYPE = "transit"
#: How often the active node looks (Vault's rollback manager: every minute).
PERIOD_SECONDS = 60.0


def due(policy: Policy, now: datetime) -> bool:
    """Whether ``policy`` has an ``auto_rotate_period`` and its newest version is at least that old."""
    if policy.auto_rotate_period <= 0 or not policy.latest_version:
        return False
    if policy.imported and not policy.allow_imported_key_rotation:
        return False  # Vault skips imported keys it may not rotate
    newest = policy.versions.get(policy.latest_version)
    if newest is None:
        return False
    return (now - newest.created).total_seconds() >= policy.auto_rotate_period


def rotate_due_keys(store: KeyStore, now: datetime, random_bytes: RandomBytes = os.urandom) -> list[str]:
    """Rotate every key of ``store`` that is ``due``; the names rotated."""
    rotated = []
    for name in store.names():
        current = store.get(name)
        if current is None or not due(current, now):
            continue

        def change(policy: Policy | None) -> Policy | None:
            if policy is None or not due(policy, now):
                return None  # deleted, or rotated meanwhile
            policy.rotate(now, random_bytes)
            return policy

        if store.update(name, change)[1]:
            rotated.append(name)
    return rotated


def transit_views(barrier: Barrier) -> list[BarrierView]:
    """The storage view of every ``transit`` mount in the mount table ``barrier`` holds."""
    raw = barrier.get(MOUNTS_KEY)
    entries = json.loads(raw) if raw else []
    return [BarrierView(barrier, f"{DATA_PREFIX}{entry['uuid']}/") for entry in entries if entry.get("type") == TYPE]


class TransitAutoRotation:
    """The node core's loop: every ``period`` seconds, on the active node only,
    ``rotate_due_keys`` on every transit mount of the storage ``barrier()`` gives
    (None while sealed)."""

    def __init__(
        self,
        barrier: Callable[[], Barrier | None],
        is_active: Callable[[], bool],
        clock: Callable[[], datetime],
        *,
        period: float = PERIOD_SECONDS,
        random_bytes: RandomBytes = os.urandom,
    ) -> None:
        self._barrier, self._is_active, self._clock = barrier, is_active, clock
        self._period, self._random_bytes = period, random_bytes
        self._stop = threading.Event()

    def tick(self) -> int:
        """One look over every transit mount; the number of keys rotated.  Errors are
        logged (never a key's material), not raised: the next tick tries again."""
        if not self._is_active():
            return 0
        barrier = self._barrier()
        if barrier is None:
            return 0
        count = 0
        try:
            now = self._clock()
            for view in transit_views(barrier):
                for name in rotate_due_keys(KeyStore(view), now, self._random_bytes):
                    log.info("transit: rotated key %s of mount %s (auto_rotate_period)", name, view.prefix)
                    count += 1
        except Exception as exc:  # a storage hiccup or a lost lock must not end the loop
            log.warning("transit automatic key rotation: %s", type(exc).__name__)
        return count

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self._period):
                self.tick()

        threading.Thread(target=loop, name="transit-auto-rotation", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
