"""In-memory storage for ``-dev`` nodes and unit tests.

Development only: everything is lost when the process exits, and it is not
shared between worker processes (a node on ``inmem`` runs one worker).
"""

from __future__ import annotations

import threading
from typing import Sequence

from strongroom.errors import InvalidRequest, RequestTooLarge
from strongroom.storage import TxnOp, children


class InmemBackend:
    """A dict behind a lock, with a monotonically increasing index."""

    def __init__(self, max_value_size: int = 512 * 1024):
        self._data: dict[str, bytes] = {}
        self._index = 0
        self._lock = threading.Lock()
        self._max_value_size = max_value_size

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._data.get(key)

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
            if op.verb == "set" and len(op.value or b"") > self._max_value_size:
                raise RequestTooLarge(f"value for {op.key!r} exceeds the storage limit of {self._max_value_size} bytes")
            if op.verb not in ("set", "delete", "delete-tree"):
                raise InvalidRequest(f"unknown transaction verb {op.verb!r}")
        with self._lock:
            for op in ops:
                if op.verb == "set":
                    self._data[op.key] = bytes(op.value or b"")
                elif op.verb == "delete":
                    self._data.pop(op.key, None)
                else:
                    for key in [k for k in self._data if k.startswith(op.key)]:
                        del self._data[key]
            self._index += 1
            return self._index
