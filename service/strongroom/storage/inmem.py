"""In-memory storage for ``-dev`` nodes and unit tests.

Development only: everything is lost when the process exits, and it is not
shared between worker processes (a node on ``inmem`` runs one worker).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from strongroom.errors import InvalidRequest
from strongroom.storage import VERBS, WRITE_VERBS, TxnOp, WriteConflict, children, value_too_large


class InmemBackend:
    """A dict behind a lock, with a monotonically increasing index.

    Each key remembers the index of the transaction that last set it (its
    modify index, as in Consul), so checks behave as they do on Consul.
    """

    def __init__(self, max_value_size: int = 512 * 1024):
        self._data: dict[str, bytes] = {}
        self._modify_index: dict[str, int] = {}
        self._index = 0
        self._lock = threading.Lock()
        self._max_value_size = max_value_size

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._data.get(key)

    def get_with_index(self, key: str) -> tuple[bytes | None, int]:
        with self._lock:
            return self._data.get(key), self._modify_index.get(key, 0)

    def get_prefix(self, prefix: str) -> dict[str, tuple[bytes, int]]:
        with self._lock:
            return {
                key: (value, self._modify_index[key]) for key, value in self._data.items() if key.startswith(prefix)
            }

    def put(self, key: str, value: bytes) -> int:
        return self.txn([TxnOp("set", key, value)])

    def delete(self, key: str) -> int:
        return self.txn([TxnOp("delete", key)])

    def delete_prefix(self, prefix: str) -> int:
        return self.txn([TxnOp("delete-tree", prefix)])

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            return children(list(self._data), prefix)

    def index(self) -> int:
        with self._lock:
            return self._index

    def txn(self, ops: Sequence[TxnOp]) -> int:
        for op in ops:
            if op.verb not in VERBS:
                raise InvalidRequest(f"unknown transaction verb {op.verb!r}")
            if op.verb == "set" and len(op.value or b"") > self._max_value_size:
                raise value_too_large(len(op.value or b""), self._max_value_size)
        writes = any(op.verb in WRITE_VERBS for op in ops) or not ops
        with self._lock:
            commit = self._index + 1
            # Undo log: the first prior state of every key touched, restored if a check fails.
            undo: dict[str, tuple[bytes | None, int]] = {}
            for op in ops:
                if op.verb in ("check-index", "check-not-exists"):
                    expected = op.index if op.verb == "check-index" else 0
                    if self._modify_index.get(op.key, 0) != expected:
                        self._restore(undo)
                        raise WriteConflict(key=op.key)
                else:
                    self._apply(op, commit, undo)
            if writes:
                self._index = commit
            return self._index

    def _apply(self, op: TxnOp, commit: int, undo: dict[str, tuple[bytes | None, int]]) -> None:
        """One write of a transaction (lock held), remembering each key's first prior state in ``undo``."""
        keys = [k for k in self._data if k.startswith(op.key)] if op.verb == "delete-tree" else [op.key]
        for key in keys:
            undo.setdefault(key, (self._data.get(key), self._modify_index.get(key, 0)))
            if op.verb == "set":
                self._data[key] = bytes(op.value or b"")
                self._modify_index[key] = commit
            else:
                self._data.pop(key, None)
                self._modify_index.pop(key, None)

    def _restore(self, undo: dict[str, tuple[bytes | None, int]]) -> None:
        """Put back what ``_apply`` changed (lock held)."""
        for key, (value, index) in undo.items():
            if value is None:
                self._data.pop(key, None)
                self._modify_index.pop(key, None)
            else:
                self._data[key] = value
                self._modify_index[key] = index
