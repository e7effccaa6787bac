"""The token store under stores that share storage but no lock (worker processes, nodes).

Each "process" is its own ``TokenStore`` over its own ``SharedView`` of one
in-memory backend; ``before_txn`` lets another process commit between one
store's read and its write.  Real-Consul versions are in tests/integration/storage.
"""

from __future__ import annotations

import threading
import time

import pytest

from strongroom.auth.token import REVOCATION_PENDING, TokenStore
from strongroom.errors import InvalidRequest, StorageUnavailable
from strongroom.storage import WriteConflict
from strongroom.storage.inmem import InmemBackend
from tests.helpers.unit_node import FakeClock


class SharedView:
    """One process's view of a shared backend: see the module docstring.
    ``read_pause`` sleeps after each ``get_with_index`` so threads overlap."""

    def __init__(self, inner, read_pause: float = 0.0):
        self.inner = inner
        self.read_pause = read_pause
        self.before_txn = []
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

    def list(self, prefix):
        return self.inner.list(prefix)

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


@pytest.fixture
def backend():
    return InmemBackend()


@pytest.fixture
def clock():
    return FakeClock()


def process(backend, clock, **view_options) -> tuple[TokenStore, SharedView]:
    view = SharedView(backend, **view_options)
    return TokenStore(view, clock, sleep=lambda seconds: None), view


def limited_token(store, uses: int) -> str:
    _, root = store.create_root()
    token_id, _ = store.create(policies=["p"], parent=root, ttl=3600, num_uses=uses)
    return token_id


def stored_ids(backend) -> list[str]:
    return backend.list("id/")


def test_two_stores_racing_on_the_last_use_grant_it_once(backend, clock):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    token = limited_token(a, 1)
    entry_a, entry_b = a.lookup(token), b.lookup(token)
    granted_b = []
    a_view.before_txn.append(lambda: granted_b.append(b.use(entry_b)))
    granted_a = a.use(entry_a)
    assert granted_a is None
    assert granted_b[0] is not None and granted_b[0].num_uses == REVOCATION_PENDING
    assert a_view.conflicts == 1
    assert a.lookup(token) is None and b.lookup(token) is None
    assert len(stored_ids(backend)) == 1  # only the root is left


def test_many_stores_in_threads_grant_exactly_the_stored_uses(backend, clock):
    stores = [process(backend, clock, read_pause=0.001) for _ in range(8)]
    token = limited_token(stores[0][0], 3)
    granted = []
    errors = []
    start = threading.Barrier(len(stores))

    def spend(n):
        store, _ = stores[n]
        start.wait()
        try:
            entry = store.lookup(token)
            if entry is not None and store.use(entry) is not None:
                granted.append(n)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(granted) == 3
    assert stores[0][0].lookup(token) is None
    assert sum(view.conflicts for _, view in stores) > 0


def test_a_use_never_resurrects_a_token_revoked_meanwhile(backend, clock):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    token = limited_token(a, 5)
    entry = a.lookup(token)
    a_view.before_txn.append(lambda: b.revoke(token))
    assert a.use(entry) is None
    assert a.lookup(token) is None
    assert len(stored_ids(backend)) == 1


def test_renewal_racing_with_a_use_does_not_give_the_use_back(backend, clock):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    token = limited_token(a, 3)
    a_view.before_txn.append(lambda: b.use(b.lookup(token)))
    clock.advance(seconds=60)
    renewed, _ = a.renew(a.lookup(token), increment=7200)
    assert renewed.num_uses == 2
    stored = b.lookup(token)
    assert stored.num_uses == 2
    assert stored.expire_at == pytest.approx(clock().timestamp() + 7200)
    assert a_view.conflicts == 1


def test_use_of_a_child_racing_with_revoke_orphan_keeps_it_orphaned(backend, clock):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    _, root = a.create_root()
    parent_id, parent = a.create(policies=["p"], parent=root, ttl=3600)
    child_id, _ = a.create(policies=["p"], parent=parent, ttl=3600, num_uses=4)
    a_view.before_txn.append(lambda: b.revoke_orphan(parent_id))
    used = a.use(a.lookup(child_id))
    assert used is not None and used.num_uses == 3 and used.orphan
    stored = b.lookup(child_id)
    assert stored.orphan and stored.num_uses == 3
    assert b.lookup(parent_id) is None


def test_the_same_custom_id_created_at_once_is_a_duplicate(backend, clock):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    a.create_root()  # writes the salt, so the next transaction is the token's
    won = []
    a_view.before_txn.append(lambda: won.append(b.create_root(token_id="shared")))
    with pytest.raises(InvalidRequest, match="duplicate ID"):
        a.create_root(token_id="shared")
    assert a.lookup("shared").accessor == won[0][1].accessor


def test_stores_created_at_once_agree_on_the_salt(backend, clock):
    a, a_view = process(backend, clock)
    b, _ = process(backend, clock)
    tokens = []
    a_view.before_txn.append(lambda: tokens.append(b.create_root()[0]))
    tokens.append(a.create_root()[0])
    third, _ = process(backend, clock)
    assert all(third.lookup(token) is not None for token in tokens)


def test_contention_gives_up_after_bounded_attempts(backend, clock):
    token = limited_token(TokenStore(backend, clock), 2)
    view = SharedView(backend)
    view.always_conflict = True
    pauses = []
    store = TokenStore(view, clock, randbytes=lambda n: b"\x80" * n, sleep=pauses.append, patience=0)
    with pytest.raises(StorageUnavailable, match="too many concurrent changes"):
        store.use(store.lookup(token))
    assert view.conflicts == 10
    jitter = 0x8080 / 65536
    assert pauses == pytest.approx([jitter * 0.002 * n for n in range(1, 10)])
    assert TokenStore(backend, clock).lookup(token).num_uses == 2
