"""Metrics at the storage seam: one latency histogram per operation and a
counter of failures by error class, for whatever backend is wrapped."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from strongroom import metrics
from strongroom.storage import Backend, TxnOp

T = TypeVar("T")


class InstrumentedBackend:
    """Wraps a ``Backend``; behaviour is unchanged, every call is timed."""

    def __init__(self, backend: Backend, name: str) -> None:
        self._backend = backend
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        # Backend-specific extras (client, prefix, close, observe_index) pass through.
        return getattr(self._backend, attr)

    def _call(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        start = time.perf_counter()
        try:
            return fn(*args)
        except Exception as exc:
            metrics.inc(metrics.labelled(metrics.storage_errors_total, self._name, type(exc).__name__))
            raise
        finally:
            metrics.observe(
                metrics.labelled(metrics.storage_seconds, self._name, operation), time.perf_counter() - start
            )

    def get(self, key: str) -> bytes | None:
        return self._call("get", self._backend.get, key)

    def get_with_index(self, key: str) -> tuple[bytes | None, int]:
        return self._call("get", self._backend.get_with_index, key)

    def get_prefix(self, prefix: str) -> Mapping[str, tuple[bytes, int]]:
        return self._call("get_prefix", self._backend.get_prefix, prefix)

    def put(self, key: str, value: bytes) -> int:
        return self._call("put", self._backend.put, key, value)

    def delete(self, key: str) -> int:
        return self._call("delete", self._backend.delete, key)

    def delete_prefix(self, prefix: str) -> int:
        return self._call("delete_prefix", self._backend.delete_prefix, prefix)

    def list(self, prefix: str) -> list[str]:
        return self._call("list", self._backend.list, prefix)

    def txn(self, ops: Sequence[TxnOp]) -> int:
        return self._call("txn", self._backend.txn, ops)

    def index(self) -> int:
        return self._backend.index()
