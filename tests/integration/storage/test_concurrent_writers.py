"""KV v2 versions and token use counts with several "processes" on real Consul.

Every process is its own engine or token store, over its own barrier and its
own ``ConsulBackend`` (its own HTTP client), sharing only the Consul prefix and
the keyring: no in-process lock is shared, so only Consul's ``check-index`` /
``check-not-exists`` keep the read-modify-write cycles correct.
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest

from strongroom.auth.token import REVOCATION_PENDING, TokenStore
from strongroom.barrier import Barrier, BarrierView, Keyring
from strongroom.engines.kv import KVv2
from strongroom.errors import CheckAndSetMismatch
from strongroom.sdk import logical
from strongroom.storage.consul import ConsulBackend
from tests.unit.engines.kv_support import FakeClock, RaceView, make_request

PROCESSES = 6


@pytest.fixture
def keyring():
    ticks = itertools.count()
    return Keyring.generate(lambda: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=next(ticks)))


@pytest.fixture
def barriers(consul_backend, consul_agent, keyring):
    """One barrier per process, each over its own Consul client, all under the test's prefix."""
    backends = [ConsulBackend.from_config(consul_agent.address, prefix=consul_backend.prefix) for _ in range(PROCESSES)]
    out = []
    for backend in backends:
        barrier = Barrier(backend)
        barrier.set_keyring(keyring)
        out.append(barrier)
    yield out
    for backend in backends:
        backend.close()


def run_threads(count, target):
    start = threading.Barrier(count)
    errors = []

    def run(n):
        start.wait()
        try:
            target(n)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


def call(engine, operation, relative_path, data=None):
    return engine.handle(make_request(operation, relative_path, data))


# -- KV v2 ----------------------------------------------------------------------


def kv_processes(barriers):
    clock = FakeClock()
    views = [RaceView(BarrierView(barrier, "logical/mount-1/"), read_pause=0.005) for barrier in barriers]
    return [KVv2(view, clock) for view in views], views


def test_cas_writers_on_consul_get_each_version_exactly_once(barriers):
    engines, views = kv_processes(barriers)
    won: dict[int, int] = {}
    mismatches = []

    def writer(n):
        while True:
            meta = call(engines[n], logical.READ, "metadata/shared")
            current = 0 if meta is None else meta.data["current_version"]
            try:
                resp = call(
                    engines[n], logical.UPDATE, "data/shared", {"data": {"writer": n}, "options": {"cas": current}}
                )
            except CheckAndSetMismatch:
                mismatches.append(n)
                continue
            won[n] = resp.data["version"]
            return

    run_threads(PROCESSES, writer)
    assert sorted(won.values()) == list(range(1, PROCESSES + 1))
    reader = engines[0]
    assert call(reader, logical.READ, "metadata/shared").data["current_version"] == PROCESSES
    for n, version in won.items():
        assert call(reader, logical.READ, "data/shared", {"version": str(version)}).data["data"] == {"writer": n}
    assert sum(view.conflicts for view in views) > 0
    assert mismatches


def test_writers_without_cas_on_consul_never_share_a_version(barriers):
    engines, views = kv_processes(barriers)
    won: dict[int, int] = {}

    def writer(n):
        won[n] = call(engines[n], logical.UPDATE, "data/shared", {"data": {"writer": n}}).data["version"]

    run_threads(PROCESSES, writer)
    assert sorted(won.values()) == list(range(1, PROCESSES + 1))
    reader = engines[0]
    for n, version in won.items():
        assert call(reader, logical.READ, "data/shared", {"version": str(version)}).data["data"] == {"writer": n}
    assert sum(view.conflicts for view in views) > 0


# -- token use counts -----------------------------------------------------------


class Rendezvous:
    """A token store's view that, once armed, waits after its next
    ``get_with_index`` until every other process has made its own: all of them
    have read the same use count before any of them writes."""

    def __init__(self, inner, meeting: threading.Barrier):
        self._inner = inner
        self._meeting = meeting
        self.armed = False

    def get_with_index(self, key):
        found = self._inner.get_with_index(key)
        if self.armed:
            self.armed = False
            self._meeting.wait(timeout=20)
        return found

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.mark.parametrize("uses", [1, 2])
def test_token_uses_raced_by_stores_on_consul_are_granted_exactly_once(barriers, uses):
    clock = FakeClock()
    creator = TokenStore(BarrierView(barriers[0], "sys/token/"), clock)
    _, root = creator.create_root()
    token, _ = creator.create(policies=["p"], parent=root, ttl=3600, num_uses=uses)
    meeting = threading.Barrier(PROCESSES)
    views = [Rendezvous(BarrierView(barrier, "sys/token/"), meeting) for barrier in barriers]
    stores = [TokenStore(view, clock) for view in views]
    entries = [store.lookup(token) for store in stores]
    for view in views:
        view.armed = True
    granted = []

    def spend(n):
        used = stores[n].use(entries[n])
        if used is not None:
            granted.append(used)

    run_threads(PROCESSES, spend)
    assert len(granted) == uses
    assert sorted(entry.num_uses for entry in granted) == ([REVOCATION_PENDING] + list(range(1, uses)))
    assert creator.lookup(token) is None
