"""Helpers for engine tests: a fake clock, flaky in-memory storage, routed requests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from strongroom.core.logical import Request
from strongroom.errors import StorageUnavailable
from strongroom.storage.inmem import InmemBackend

START = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
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
    return Request(operation=operation, path=mount + relative_path, data=dict(data or {}),
                   mount_point=mount, mount_type="kv", relative_path=relative_path)
