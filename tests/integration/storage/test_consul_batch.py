"""Group commit on real Consul: concurrent transactions of one process share
Consul transactions, and every caller still gets the answer it would have got
alone (storage/consul_batch.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from strongroom.errors import LockLost, WriteConflict
from strongroom.storage import TxnOp, check_op
from tests.integration.storage.test_consul_backend import LockHolder, in_consul

THREADS = 16


def run_together(count: int, work):
    """``work(i)`` in ``count`` threads released at once; each result or exception."""
    start = threading.Barrier(count)

    def one(i):
        start.wait(timeout=30)
        try:
            return work(i)
        except Exception as exc:  # the test inspects it
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_writers_share_transactions_and_each_gets_its_own_index(consul_backend):
    def writer(i):
        indexes = []
        for n in range(15):
            _, index = consul_backend.get_with_index(f"w/{i}")
            indexes.append(consul_backend.txn([check_op(f"w/{i}", index), TxnOp("set", f"w/{i}", b"%d" % n)]))
        return indexes

    results = run_together(THREADS, writer)
    assert all(isinstance(r, list) for r in results), results
    for i, indexes in enumerate(results):
        value, modify = consul_backend.get_with_index(f"w/{i}")
        assert value == b"14" and modify == indexes[-1]
        assert indexes == sorted(indexes)
    batcher = consul_backend._batcher
    assert batcher.members == THREADS * 15
    assert batcher.batches < batcher.members  # some transactions were shared


def test_exactly_one_of_many_racing_creators_wins(consul_backend, consul_agent):
    for round_ in range(5):
        key = f"race/{round_}"
        results = run_together(
            8, lambda i, key=key: consul_backend.txn([TxnOp("check-not-exists", key), TxnOp("set", key, b"%d" % i)])
        )
        winners = [i for i, r in enumerate(results) if isinstance(r, int)]
        assert len(winners) == 1, results
        assert all(isinstance(r, WriteConflict) for i, r in enumerate(results) if i != winners[0])
        assert in_consul(consul_agent, consul_backend, key) == b"%d" % winners[0]


def test_a_conflicting_member_does_not_cost_the_others_their_write(consul_backend, consul_agent):
    consul_backend.put("taken", b"first")

    def work(i):
        if i % 4 == 0:  # checks a key that exists: always conflicts
            return consul_backend.txn([TxnOp("check-not-exists", "taken"), TxnOp("set", f"lost/{i}", b"x")])
        return consul_backend.txn([TxnOp("set", f"kept/{i}", b"%d" % i)])

    for _ in range(5):
        results = run_together(THREADS, work)
        for i, result in enumerate(results):
            if i % 4 == 0:
                assert isinstance(result, WriteConflict) and result.key == "taken", result
                assert in_consul(consul_agent, consul_backend, f"lost/{i}") is None
            else:
                assert isinstance(result, int), result
                assert in_consul(consul_agent, consul_backend, f"kept/{i}") == b"%d" % i


def test_a_lost_lock_fails_every_member_and_writes_nothing(consul_backend, consul_agent):
    holder = LockHolder(consul_backend)
    holder.sessions.destroy_session(holder.session)
    results = run_together(THREADS, lambda i: holder.backend.put(f"fenced/{i}", b"deposed"))
    assert all(isinstance(r, LockLost) for r in results), results
    assert all(in_consul(consul_agent, consul_backend, f"fenced/{i}") is None for i in range(THREADS))


def test_batches_stay_under_consuls_size_limit(consul_backend, consul_agent):
    """Sixteen writers of 100 kB values cannot share one 512 KiB transaction:
    the batcher splits them and every write lands."""
    size = 100_000
    results = run_together(THREADS, lambda i: consul_backend.put(f"big/{i}", bytes([i]) * size))
    assert all(isinstance(r, int) for r in results), results
    assert all(in_consul(consul_agent, consul_backend, f"big/{i}") == bytes([i]) * size for i in range(THREADS))


def test_a_batch_of_fenced_writes_carries_one_change_record_naming_every_key(consul_backend, consul_agent):
    """The standby change log (storage/changes.py) gets one record per Consul
    transaction, not per member: fewer operations to apply and to prune, and
    every key a member wrote is still named, at that member's commit index."""
    holder = LockHolder(consul_backend)
    try:
        rounds = 5
        indexes = [
            run_together(THREADS, lambda i, r=r: holder.backend.put(f"rec/{r}/{i}", b"v")) for r in range(rounds)
        ]
        assert all(isinstance(index, int) for found in indexes for index in found), indexes
        written = {f"rec/{r}/{i}": indexes[r][i] for r in range(rounds) for i in range(THREADS)}
        records = {}
        for key, (value, index) in consul_backend.get_prefix("changes/").items():
            if not key.startswith("changes/~"):
                records[key] = (value.decode().split("\n"), index)
        named = {name: index for names, index in records.values() for name in names}
        assert {key: named.get(key) for key in written} == written  # each key, at its own commit's index
        assert len(records) < len(written), "concurrent members should have shared records"
        assert holder.lost == 0
    finally:
        holder.sessions.destroy_session(holder.session)
