"""Where a transit mount keeps its keys: ``policy/<name>`` in the mount's barrier view.

Each key is one JSON value (its key material base64 inside, encrypted by the
barrier like every value of the mount).  Changes are optimistic
read-modify-writes (``update``): the value is read with its modify index and
written with a ``check-index`` on it, and the whole change runs again on a
``WriteConflict``, so two processes rotating the same key never lose a version.
Nothing is cached between requests: every request reads the key, so a rotation
on the active node is seen by the next request on any node.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from strongroom.engines.transit.policy import Policy
from strongroom.errors import StorageUnavailable
from strongroom.storage import Backend, TxnOp, WriteConflict, check_op

PREFIX = "policy/"
MAX_ATTEMPTS = 10


class KeyStore:
    """The keys of one transit mount over its storage ``view``."""

    def __init__(self, view: Backend):
        self.view = view

    def get(self, name: str) -> Policy | None:
        """The key ``name``, or None."""
        raw = self.view.get(PREFIX + name)
        return None if raw is None else Policy.from_json(json.loads(raw))

    def names(self) -> list[str]:
        """The names of every key, sorted."""
        return [name for name in self.view.list(PREFIX) if not name.endswith("/")]

    def update(self, name: str, change: Callable[[Policy | None], Policy | None]) -> tuple[Policy | None, int]:
        """Apply ``change`` to the stored key (None when absent) and write what it
        returns (None: nothing to write), guarded by the index read; returns the
        key and the storage index after the write (0 when nothing was written)."""
        key = PREFIX + name
        for _ in range(MAX_ATTEMPTS):
            raw, read_index = self.view.get_with_index(key)
            current = None if raw is None else Policy.from_json(json.loads(raw))
            changed = change(current)
            if changed is None:
                return current, 0
            value = json.dumps(changed.to_json()).encode()
            try:
                index = self.view.txn([check_op(key, read_index), TxnOp("set", key, value)])
            except WriteConflict:
                continue
            return changed, index
        raise StorageUnavailable(f"too many concurrent changes to transit key {name}")

    def delete(self, name: str) -> int:
        """Remove the key ``name``; the storage index after the write."""
        return self.view.delete(PREFIX + name)
