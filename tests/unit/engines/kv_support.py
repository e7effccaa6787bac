"""Helpers for engine tests: a fake clock, flaky in-memory storage, routed requests,
and a view that stages races between engines sharing one backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from strongroom.errors import StorageUnavailable
from strongroom.sdk.logical import Request
from strongroom.storage import WriteConflict
from strongroom.storage.inmem import InmemBackend

START = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
START_TEXT = "2024-01-02T03:04:05.123456Z"


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime = START):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


class FlakyBackend(InmemBackend):
    """In-memory storage that records its transactions and fails the next ``fail_txns`` of them."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fail_txns = 0
        self.txns: list[list] = []

    def txn(self, ops):
        if self.fail_txns:
            self.fail_txns -= 1
            raise StorageUnavailable("injected failure")
        self.txns.append(list(ops))
        return super().txn(ops)

    def snapshot(self) -> dict:
        return dict(self._data)


def make_request(operation: str, relative_path: str, data: dict | None = None, mount: str = "secret/") -> Request:
    """A routed logical request, as the core hands it to an engine."""
    return Request(
        operation=operation,
        path=mount + relative_path,
        data=dict(data or {}),
        mount_point=mount,
        mount_type="kv",
        relative_path=relative_path,
    )


class RaceView:
    """A storage view over a shared backend, standing in for one process.

    ``read_pause`` (seconds) sleeps after every ``get_with_index`` and
    ``get_prefix`` (the reads a read-modify-write starts from), widening the
    read-modify-write window so concurrent writers really overlap;
    ``before_txn`` holds callables each run once, in order, just before one of
    the next transactions (another "process" committing between this one's
    read and its commit); ``conflicts`` counts the ``WriteConflict`` the
    backend raised; ``always_conflict`` makes every checked transaction fail.
    """

    def __init__(self, inner, read_pause: float = 0.0):
        self.inner = inner
        self.read_pause = read_pause
        self.before_txn: list[Callable[[], object]] = []
        self.conflicts = 0
        self.always_conflict = False
        self._lock = threading.Lock()

    def get(self, key):
        return self.inner.get(key)

    def get_with_index(self, key):
        found = self.inner.get_with_index(key)
        if self.read_pause:
            time.sleep(self.read_pause)
        return found

    def get_prefix(self, prefix):
        found = self.inner.get_prefix(prefix)
        if self.read_pause:
            time.sleep(self.read_pause)
        return found

    def list(self, prefix=""):
        return self.inner.list(prefix)

    def index(self):
        return self.inner.index()

    def put(self, key, value):
        return self.inner.put(key, value)

    def delete(self, key):
        return self.inner.delete(key)

    def delete_prefix(self, prefix):
        return self.inner.delete_prefix(prefix)

    def txn(self, ops):
        if self.before_txn:
            self.before_txn.pop(0)()
        try:
            if self.always_conflict and any(op.verb.startswith("check-") for op in ops):
                raise WriteConflict(key=ops[0].key)
            return self.inner.txn(ops)
        except WriteConflict:
            with self._lock:
                self.conflicts += 1
            raise
