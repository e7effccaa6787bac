"""ConsulBackend and ConsulSessions against a real Consul agent.

Each test works under its own key prefix on the session-wide agent; tests that
stop Consul or need ACLs start a private agent.  Nothing sleeps and hopes:
waits poll a condition with a deadline.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid

import pytest

from strongroom.errors import InvalidRequest, LockLost, RequestTooLarge, StorageUnavailable
from strongroom.storage import TxnOp
from strongroom.storage.consul import ConsulBackend
from strongroom.storage.consul_session import ConsulSessions
from strongroom.storage.consul_txn import TXN_MAX_OPS
from tests.helpers.procs import ConsulAgent, ConsulCluster, freeze, start_agent, wait_until

KIB = 1024


def in_consul(agent, backend: ConsulBackend, key: str) -> bytes | None:
    """The value Consul holds for a backend key, read past the backend with a plain client."""
    _, entry = agent.client().kv.get(backend.prefix + key)
    return None if entry is None else (entry["Value"] or b"")


class LockHolder:
    """A session holding ``core/lock`` and a backend fenced on it."""

    def __init__(self, backend: ConsulBackend):
        self.sessions = ConsulSessions.for_backend(backend)
        self.session = self.sessions.create_session("strongroom-test", ["serfHealth"])
        assert self.sessions.acquire("core/lock", b"node-a", self.session)
        self.lost = 0
        self.backend = ConsulBackend(
            backend.client,
            prefix=backend.prefix,
            fence=lambda: ("core/lock", self.session),
            on_lock_lost=self._on_lost,
        )

    def _on_lost(self) -> None:
        self.lost += 1


# -- round trips and listing ---------------------------------------------------


def test_round_trip_keeps_bytes_exactly(consul_backend, consul_agent):
    value = bytes(range(256)) * 3
    consul_backend.put("sys/policy/a", value)
    assert consul_backend.get("sys/policy/a") == value
    assert in_consul(consul_agent, consul_backend, "sys/policy/a") == value
    consul_backend.put("sys/policy/a", b"second")
    assert consul_backend.get("sys/policy/a") == b"second"


def test_empty_value_is_not_a_missing_key(consul_backend):
    consul_backend.put("empty", b"")
    assert consul_backend.get("empty") == b""
    assert consul_backend.get("never-written") is None


def test_keys_live_under_the_prefix_only(consul_backend, consul_agent):
    consul_backend.put("core/x", b"1")
    _, keys = consul_agent.client().kv.get(consul_backend.prefix, keys=True)
    assert keys == [consul_backend.prefix + "core/x"]


def test_list_returns_immediate_children_sorted_with_folders(consul_backend):
    for key in ("b", "a", "a/x", "a/y/z", "c/d/e/f", "ab"):
        consul_backend.put(key, b"v")
    assert consul_backend.list("") == ["a", "a/", "ab", "b", "c/"]
    assert consul_backend.list("a/") == ["x", "y/"]
    assert consul_backend.list("a/y/") == ["z"]
    assert consul_backend.list("c/") == ["d/"]
    assert consul_backend.list("c/d/e/") == ["f"]


def test_keys_with_url_special_characters_round_trip(consul_backend):
    keys = ["sp ace", "q?x=1", "hash#frag", "pct%2F", "ünï/cødé", "plus+amp&"]
    for i, key in enumerate(keys):
        consul_backend.put(key, str(i).encode())
    for i, key in enumerate(keys):
        assert consul_backend.get(key) == str(i).encode()
    assert consul_backend.list("") == sorted(["sp ace", "q?x=1", "hash#frag", "pct%2F", "ünï/", "plus+amp&"])
    consul_backend.delete("q?x=1")
    assert consul_backend.get("q?x=1") is None


def test_list_of_missing_or_leaf_prefix_is_empty(consul_backend):
    consul_backend.put("leaf", b"v")
    assert consul_backend.list("nothing/") == []
    assert consul_backend.list("leaf/") == []


def test_list_does_not_see_other_prefixes(consul_backend, consul_agent):
    other = ConsulBackend.from_config(consul_agent.address, prefix=consul_backend.prefix.rstrip("/") + "-other/")
    try:
        other.put("intruder", b"v")
        consul_backend.put("mine", b"v")
        assert consul_backend.list("") == ["mine"]
    finally:
        other.delete_prefix("")


# -- prefix reads ----------------------------------------------------------------


def test_get_prefix_returns_values_and_modify_indexes_of_the_folder(consul_backend):
    written = consul_backend.txn([TxnOp("set", "s/a/meta", b"m"), TxnOp("set", "s/a/1", bytes(range(256)))])
    later = consul_backend.put("s/a/2", b"")
    consul_backend.put("s/b/meta", b"other folder")
    consul_backend.put("s/a", b"sibling key, not in the folder")
    found = consul_backend.get_prefix("s/a/")
    assert found == {"s/a/meta": (b"m", written), "s/a/1": (bytes(range(256)), written), "s/a/2": (b"", later)}
    for key, pair in found.items():
        assert consul_backend.get_with_index(key) == pair


def test_get_prefix_is_a_string_prefix_with_backend_keys(consul_backend):
    for key in ("ab", "a/b", "a/c/d", "b"):
        consul_backend.put(key, key.encode())
    assert sorted(consul_backend.get_prefix("a")) == ["a/b", "a/c/d", "ab"]
    assert sorted(consul_backend.get_prefix("")) == ["a/b", "a/c/d", "ab", "b"]
    assert consul_backend.get_prefix("a/c/d") == {"a/c/d": (b"a/c/d", consul_backend.get_with_index("a/c/d")[1])}


def test_get_prefix_of_nothing_is_empty_and_sees_no_other_backend(consul_backend, consul_agent):
    assert consul_backend.get_prefix("") == {}
    other = ConsulBackend.from_config(consul_agent.address, prefix=consul_backend.prefix.rstrip("/") + "-other/")
    try:
        other.put("intruder", b"v")
        consul_backend.put("t/x", b"1")
        consul_backend.delete_prefix("t/")
        assert consul_backend.get_prefix("") == {}
        assert consul_backend.get_prefix("t/") == {}
    finally:
        other.delete_prefix("")


def test_get_prefix_with_url_special_characters(consul_backend):
    keys = ["f?x=1/a", "f?x=1/b c", "f?x=1/ü#%2F"]
    for key in keys:
        consul_backend.put(key, key.encode())
    assert {k: v for k, (v, _) in consul_backend.get_prefix("f?x=1/").items()} == {k: k.encode() for k in keys}


def test_get_prefix_is_one_request_and_observes_the_index(consul_backend, consul_agent):
    for n in range(5):
        consul_backend.put(f"f/{n}", b"v")
    # Written past the backend, so only the read can tell it about the index.
    consul_agent.client().kv.put(consul_backend.prefix + "f/late", b"x")
    counting = CountingHTTP(consul_backend._http)
    consul_backend._http = counting
    found = consul_backend.get_prefix("f/")
    assert len(found) == 6
    assert counting.calls == 1
    assert consul_backend.index() >= found["f/late"][1]


def test_get_prefix_reads_a_transaction_whole_under_concurrent_writes(consul_backend):
    stop = threading.Event()
    errors = []

    def write() -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                value = str(n).encode()
                consul_backend.txn([TxnOp("set", "f/a", value), TxnOp("set", "f/b", value)])
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    torn = []
    try:
        for _ in range(200):
            found = consul_backend.get_prefix("f/")
            if found and found["f/a"] != found["f/b"]:
                torn.append(found)
    finally:
        stop.set()
        writer.join()
    assert errors == [] and torn == []


def test_strong_consistency_reads(consul_agent):
    backend = ConsulBackend.from_config(
        f"http://{consul_agent.address}", prefix=f"test-{uuid.uuid4().hex}", consistency_mode="strong"
    )
    try:
        assert backend.prefix.endswith("/")
        backend.put("k/v", b"1")
        assert backend.get("k/v") == b"1"
        assert backend.list("k/") == ["v"]
        assert backend.get_prefix("k/") == {"k/v": backend.get_with_index("k/v")}
    finally:
        backend.delete_prefix("")


def test_bad_configuration_is_refused(consul_agent):
    with pytest.raises(ValueError):
        ConsulBackend(consul_agent.client(), consistency_mode="eventual")
    with pytest.raises(ValueError):
        ConsulBackend.from_config("ftp://127.0.0.1:8500")
    with pytest.raises(ValueError):
        ConsulBackend.from_config("http://127.0.0.1:8500", scheme="https")


# -- deletes -------------------------------------------------------------------


def test_delete_removes_one_key_and_tolerates_absence(consul_backend, consul_agent):
    consul_backend.put("a", b"1")
    consul_backend.put("a/b", b"2")
    consul_backend.delete("a")
    assert consul_backend.get("a") is None
    assert consul_backend.get("a/b") == b"2"
    assert in_consul(consul_agent, consul_backend, "a") is None
    consul_backend.delete("a")


def test_delete_prefix_removes_the_subtree_only(consul_backend):
    for key in ("logical/m1/a", "logical/m1/b/c", "logical/m10/x", "logical/m2/a"):
        consul_backend.put(key, b"v")
    consul_backend.delete_prefix("logical/m1/")
    assert consul_backend.list("logical/") == ["m10/", "m2/"]
    assert consul_backend.get("logical/m1/b/c") is None


# -- transactions --------------------------------------------------------------


def test_txn_applies_every_operation_together(consul_backend):
    consul_backend.put("old", b"1")
    consul_backend.put("tree/a", b"1")
    consul_backend.put("tree/b/c", b"1")
    index = consul_backend.txn(
        [
            TxnOp("set", "new/1", b"a"),
            TxnOp("set", "new/2", b"b"),
            TxnOp("delete", "old"),
            TxnOp("delete-tree", "tree/"),
        ]
    )
    assert consul_backend.list("") == ["new/"]
    assert consul_backend.index() == index


def test_txn_with_an_invalid_op_changes_nothing(consul_backend, consul_agent):
    with pytest.raises(InvalidRequest):
        consul_backend.txn([TxnOp("set", "before", b"v"), TxnOp("rename", "before")])
    assert in_consul(consul_agent, consul_backend, "before") is None


def test_txn_consul_refuses_as_a_whole_changes_nothing(consul_backend, consul_agent):
    """With the local limits lifted, Consul's own 413 (its per-value or per-body
    limit) rejects the whole transaction, small value included."""
    lifted = ConsulBackend(
        consul_backend.client, prefix=consul_backend.prefix, max_value_size=4096 * KIB, max_txn_bytes=8192 * KIB
    )
    with pytest.raises(RequestTooLarge):
        lifted.txn([TxnOp("set", "small", b"v"), TxnOp("set", "huge", b"x" * (600 * KIB))])
    assert in_consul(consul_agent, consul_backend, "small") is None
    assert in_consul(consul_agent, consul_backend, "huge") is None


def test_empty_txn_writes_nothing(consul_backend):
    consul_backend.put("a", b"1")
    assert consul_backend.txn([]) == consul_backend.index()


# -- indexes -------------------------------------------------------------------


def test_writes_return_increasing_indexes_and_index_tracks_them(consul_backend):
    seen = []
    seen.append(consul_backend.put("a", b"1"))
    seen.append(consul_backend.put("b", b"2"))
    seen.append(consul_backend.delete("a"))
    seen.append(consul_backend.txn([TxnOp("set", "c", b"3"), TxnOp("delete", "b")]))
    seen.append(consul_backend.delete_prefix(""))
    seen.append(consul_backend.put("d", b"4"))
    assert seen == sorted(seen)
    # Writes that change data each commit under a new index; the delete-only
    # ones return the index of the commit (tombstones carry it).
    assert len(set(seen)) == len(seen)
    assert consul_backend.index() == seen[-1]
    consul_backend.get("d")
    consul_backend.list("")
    assert consul_backend.index() == seen[-1]


def test_index_covers_other_writers_seen_by_reads(consul_backend, consul_agent):
    other = ConsulBackend.from_config(consul_agent.address, prefix=consul_backend.prefix)
    written = other.put("from-elsewhere", b"v")
    assert consul_backend.index() < written
    consul_backend.get("from-elsewhere")
    assert consul_backend.index() >= written


def test_index_is_monotonic_under_concurrent_writers(consul_backend):
    results: list[int] = []
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                results.append(consul_backend.put(f"w{n}/{i}", b"v"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 80
    assert consul_backend.index() == max(results)
    assert len(consul_backend.list("")) == 8


class CountingHTTP:
    """Wraps the backend's HTTP transport (still talking to the real agent) to
    record the peak number of concurrent requests."""

    def __init__(self, inner):
        self._inner = inner
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.calls = 0

    def _call(self, method, *args, **kwargs):
        with self._lock:
            self.calls += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            return getattr(self._inner, method)(*args, **kwargs)
        finally:
            with self._lock:
                self.active -= 1

    def request(self, *args, **kwargs):
        return self._call("request", *args, **kwargs)

    def close(self):
        self._inner.close()


def test_max_parallel_bounds_concurrent_consul_calls(consul_agent):
    backend = ConsulBackend(consul_agent.client(), prefix=f"test-{uuid.uuid4().hex}/", max_parallel=3)
    counting = CountingHTTP(backend._http)
    backend._http = counting
    start = threading.Barrier(24)

    def worker(n: int) -> None:
        start.wait()
        backend.put(f"k{n}", b"v")
        backend.get(f"k{n}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= counting.peak <= 3
    assert len(backend.list("")) == 24
    backend.delete_prefix("")


# -- limits --------------------------------------------------------------------


def test_value_over_the_limit_is_refused_before_sending(consul_backend, consul_agent):
    with pytest.raises(RequestTooLarge):
        consul_backend.put("big", b"x" * (512 * KIB + 1))
    assert in_consul(consul_agent, consul_backend, "big") is None


def test_transaction_body_limit_caps_values_near_384_kib(consul_backend, consul_agent):
    """Consul's txn_max_req_len (512 KiB) counts the base64 body, so a value that
    fits kv_max_value_size can still be too large for a transaction."""
    with pytest.raises(RequestTooLarge):
        consul_backend.put("big", b"x" * (400 * KIB))
    assert in_consul(consul_agent, consul_backend, "big") is None
    value = b"y" * (380 * KIB)
    consul_backend.put("fits", value)
    assert consul_backend.get("fits") == value


def test_more_than_64_operations_are_refused_not_split(consul_backend, consul_agent):
    ops = [TxnOp("set", f"k{i}", b"v") for i in range(TXN_MAX_OPS + 1)]
    with pytest.raises(InvalidRequest):
        consul_backend.txn(ops)
    assert consul_backend.list("") == []
    consul_backend.txn(ops[:TXN_MAX_OPS])
    assert len(consul_backend.list("")) == TXN_MAX_OPS


def test_fence_and_change_record_count_toward_the_64_operations(consul_backend):
    holder = LockHolder(consul_backend)
    try:
        with pytest.raises(InvalidRequest):
            holder.backend.txn([TxnOp("set", f"k{i}", b"v") for i in range(TXN_MAX_OPS - 1)])
        assert [k for k in consul_backend.list("") if k.startswith("k")] == []
        holder.backend.txn([TxnOp("set", f"k{i}", b"v") for i in range(TXN_MAX_OPS - 2)])
        (record,) = consul_backend.get_prefix("changes/").values()
        assert sorted(record[0].decode().split("\n")) == sorted(f"k{i}" for i in range(TXN_MAX_OPS - 2))
        assert holder.lost == 0
    finally:
        holder.sessions.destroy_session(holder.session)


# -- fencing -------------------------------------------------------------------


def test_fenced_write_succeeds_while_the_session_holds_the_lock(consul_backend):
    holder = LockHolder(consul_backend)
    try:
        put_index = holder.backend.put("sys/mounts", b"table")
        assert consul_backend.get("sys/mounts") == b"table"
        # A delete-only fenced transaction must not report the lock's index.
        delete_index = holder.backend.delete("sys/mounts")
        assert delete_index > put_index
        assert holder.lost == 0
    finally:
        holder.sessions.destroy_session(holder.session)


def test_write_after_session_destroyed_raises_lock_lost_and_writes_nothing(consul_backend, consul_agent):
    holder = LockHolder(consul_backend)
    holder.sessions.destroy_session(holder.session)
    with pytest.raises(LockLost):
        holder.backend.txn([TxnOp("set", "a", b"deposed"), TxnOp("set", "b", b"deposed")])
    assert holder.lost == 1
    assert in_consul(consul_agent, consul_backend, "a") is None
    assert in_consul(consul_agent, consul_backend, "b") is None


def test_write_after_lock_taken_by_another_session_raises_lock_lost(consul_backend, consul_agent):
    consul_backend.put("keep", b"original")
    holder = LockHolder(consul_backend)
    sessions = holder.sessions
    other = sessions.create_session("strongroom-other", ["serfHealth"])
    try:
        assert not sessions.acquire("core/lock", b"node-b", other)
        assert sessions.release("core/lock", holder.session)
        assert sessions.acquire("core/lock", b"node-b", other)
        for write in (
            lambda: holder.backend.put("keep", b"deposed"),
            lambda: holder.backend.delete("keep"),
            lambda: holder.backend.delete_prefix(""),
        ):
            with pytest.raises(LockLost):
                write()
        assert holder.lost == 3
        assert in_consul(consul_agent, consul_backend, "keep") == b"original"
    finally:
        sessions.destroy_session(other)
        sessions.destroy_session(holder.session)


def test_unfenced_backend_writes_without_a_lock(consul_backend):
    unfenced = ConsulBackend(consul_backend.client, prefix=consul_backend.prefix, fence=lambda: None)
    unfenced.put("free", b"v")
    assert consul_backend.get("free") == b"v"


# -- sessions, lock and watches -------------------------------------------------


def test_acquire_and_release_follow_consul_lock_semantics(consul_backend):
    sessions = ConsulSessions.for_backend(consul_backend)
    a = sessions.create_session("a", ["serfHealth"])
    b = sessions.create_session("b", ["serfHealth"])
    try:
        assert sessions.acquire("core/lock", b"node-a", a)
        assert sessions.acquire("core/lock", b"node-a", a)
        assert not sessions.acquire("core/lock", b"node-b", b)
        assert not sessions.release("core/lock", b)
        assert sessions.release("core/lock", a)
        _, value, holder = sessions.wait_key("core/lock", 0)
        assert (value, holder) == (b"", None)
        assert sessions.acquire("core/lock", b"node-b", b)
    finally:
        sessions.destroy_session(a)
        sessions.destroy_session(b)


def test_acquire_with_a_destroyed_session_raises_lock_lost(consul_backend):
    sessions = ConsulSessions.for_backend(consul_backend)
    sid = sessions.create_session("gone", ["serfHealth"])
    sessions.destroy_session(sid)
    sessions.destroy_session(sid)
    with pytest.raises(LockLost):
        sessions.acquire("core/lock", b"node", sid)


def test_destroying_the_session_releases_its_lock(consul_backend):
    sessions = ConsulSessions.for_backend(consul_backend)
    sid = sessions.create_session("holder", ["serfHealth"])
    assert sessions.acquire("core/lock", b"node-a", sid)
    index, value, holder = sessions.wait_key("core/lock", 0)
    assert (value, holder) == (b"node-a", sid)
    sessions.destroy_session(sid)
    _, value, holder = sessions.wait_key("core/lock", index, wait="10s")
    assert holder is None


def test_wait_key_returns_when_the_key_changes(consul_backend):
    sessions = ConsulSessions.for_backend(consul_backend)
    index, value, holder = sessions.wait_key("core/watched", 0)
    assert (value, holder) == (None, None)
    result: list = []
    waiter = threading.Thread(target=lambda: result.append(sessions.wait_key("core/watched", index, wait="30s")))
    waiter.start()
    consul_backend.put("core/watched", b"changed")
    waiter.join(timeout=15)
    assert not waiter.is_alive(), "blocking query did not return after the key changed"
    new_index, value, _ = result[0]
    assert value == b"changed" and new_index > index
    assert consul_backend.index() >= new_index


def test_wait_key_times_out_unchanged(consul_backend):
    sessions = ConsulSessions.for_backend(consul_backend)
    consul_backend.put("core/quiet", b"v")
    index, _, _ = sessions.wait_key("core/quiet", 0)
    again, value, _ = sessions.wait_key("core/quiet", index, wait="100ms")
    assert (again, value) == (index, b"v")


def test_session_errors_are_translated(consul_backend):
    """Consul 1.8 answers these caller mistakes with HTTP 500, not 400."""
    sessions = ConsulSessions.for_backend(consul_backend)
    with pytest.raises(StorageUnavailable, match="Missing check"):
        sessions.create_session("x", ["no-such-check"])
    with pytest.raises(StorageUnavailable, match="Invalid Session TTL"):
        sessions.create_session("x", ["serfHealth"], ttl="5s")
    with pytest.raises(InvalidRequest):
        sessions.create_session("x", ["serfHealth"], behavior="forget")
    sid = sessions.create_session("ttl", ["serfHealth"], ttl="10s")
    assert sessions.renew_session(sid)
    sessions.destroy_session(sid)
    assert not sessions.renew_session(sid)


# -- Consul unavailable, ACLs ------------------------------------------------------


def test_consul_down_raises_storage_unavailable():
    agent = start_agent()
    try:
        backend = ConsulBackend.from_config(agent.address, prefix="down/", timeout=2.0)
        sessions = ConsulSessions.for_backend(backend)
        backend.put("k", b"before")
    finally:
        agent.stop()
    secret = b"s3cr3t-value"
    calls = [
        lambda: backend.get("k"),
        lambda: backend.list(""),
        lambda: backend.get_prefix(""),
        lambda: backend.put("k", secret),
        lambda: backend.delete("k"),
        lambda: backend.delete_prefix(""),
        lambda: sessions.create_session("x", ["serfHealth"]),
        lambda: sessions.wait_key("k", 0),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailable) as caught:
            call()
        assert type(caught.value) is StorageUnavailable
        assert agent.address in str(caught.value)
        assert secret.decode() not in str(caught.value)


def test_acl_token_is_sent_and_denial_is_storage_unavailable():
    master = str(uuid.uuid4())
    acl = f'\nacl {{\n  enabled = true\n  default_policy = "deny"\n  tokens {{ master = "{master}" }}\n}}\n'
    agent = start_agent(extra_hcl=acl, token=master)
    try:
        allowed = ConsulBackend.from_config(agent.address, token=master, prefix="acl/")
        allowed.put("k", b"v")
        assert allowed.get("k") == b"v"
        assert allowed.delete("k") > 0
        sid = ConsulSessions.for_backend(allowed).create_session("acl", ["serfHealth"])
        assert ConsulSessions.for_backend(allowed).acquire("core/lock", b"n", sid)

        anonymous = ConsulBackend.from_config(agent.address, prefix="acl/")
        lost = []
        fenced = ConsulBackend(
            anonymous.client, prefix="acl/", fence=lambda: ("core/lock", sid), on_lock_lost=lambda: lost.append(1)
        )
        calls = (
            lambda: anonymous.put("k", b"v"),
            lambda: anonymous.delete("k"),
            lambda: anonymous.get("k"),
            lambda: fenced.put("k", b"v"),
            lambda: ConsulSessions.for_backend(anonymous).create_session("x", ["serfHealth"]),
        )
        for call in calls:
            # A denied fenced write is a configuration problem, not a lost lock.
            with pytest.raises(StorageUnavailable, match="ACL token"):
                call()
        assert lost == []
        assert allowed.get("k") is None
    finally:
        agent.stop()


# -- a real three-server cluster -----------------------------------------------------


@pytest.mark.slow
def test_cluster_elects_a_new_leader_after_the_leader_is_killed():
    with ConsulCluster(3) as cluster:
        old_pid = cluster.leader_pid()
        follower = next(a for a in cluster.agents if a.pid != old_pid)
        backend = ConsulBackend.from_config(follower.address, prefix="cluster/")
        backend.put("before", b"1")

        cluster.kill(old_pid)
        new_leader = cluster.wait_for_leader(timeout=30)
        assert new_leader.pid != old_pid
        assert cluster.leader_pid() == new_leader.pid

        # The old leader is gone; writes through the surviving follower work
        # again once it knows the new leader.
        wait_until(lambda: backend.put("after", b"2"), 15, "a write after failover", fatal=(LockLost,))
        assert backend.get("before") == b"1"
        assert backend.get("after") == b"2"
        assert len(cluster.live_agents()) == 2


def test_sequential_calls_reuse_one_kept_alive_connection(consul_backend):
    consul_backend.put("k", b"v")
    first = consul_backend._http._idle[-1].sock.getsockname()
    for _ in range(20):
        assert consul_backend.get("k") == b"v"
    assert [conn.sock.getsockname() for conn in consul_backend._http._idle] == [first]


def test_concurrent_calls_share_a_pool_of_connections(consul_backend):
    consul_backend.put("k", b"v")
    barrier = threading.Barrier(8)
    errors = []

    def reader():
        try:
            barrier.wait(10)
            for _ in range(25):
                assert consul_backend.get("k") == b"v"
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    idle = consul_backend._http._idle
    # Every connection went back to the pool; no more were opened than callers.
    assert 1 <= len(idle) <= 8
    ports = {conn.sock.getsockname() for conn in idle}
    assert len(ports) == len(idle)
    for _ in range(10):
        consul_backend.get("k")
    assert {conn.sock.getsockname() for conn in consul_backend._http._idle} == ports


def test_an_answer_that_comes_too_late_is_never_taken_for_the_next_one(consul_agent):
    """Consul frozen mid-request: the call times out as unavailable, and its
    connection is dropped, so the late answer (for another key) can never be
    read as the answer to a later request."""
    backend = ConsulBackend.from_config(consul_agent.address, prefix=f"late-{uuid.uuid4().hex}/", timeout=0.5)
    backend.put("first", b"1")
    backend.put("second", b"2")
    freeze(consul_agent.pid)
    try:
        with pytest.raises(StorageUnavailable):
            backend.get("first")
    finally:
        os.kill(consul_agent.pid, signal.SIGCONT)
    assert backend.get("second") == b"2"
    assert backend.get("first") == b"1"
    backend.close()


def test_a_connection_consul_closed_is_replaced_not_reported():
    """Consul restarted at the same address: the next write opens a new connection
    instead of failing on the one Consul closed."""
    first = start_agent()
    second = None
    try:
        backend = ConsulBackend.from_config(first.address, prefix="restart/", timeout=5.0)
        backend.put("k", b"before")
        stale = backend._http._idle[-1]
        first.stop()
        second = ConsulAgent(ports=dict(first.ports)).start()
        wait_until(
            lambda: stale.sock is None or stale.sock.fileno() < 0 or _peer_gone(stale.sock),
            10,
            "the old agent's end of the kept-alive connection to close",
        )
        backend.put("k", b"after")
        assert backend.get("k") == b"after"
        assert stale not in backend._http._idle
        backend.close()
        assert backend._http._idle == []
    finally:
        first.stop()
        if second is not None:
            second.stop()


def _peer_gone(sock) -> bool:
    from strongroom.storage.consul_transport import _closed_by_peer

    return _closed_by_peer(sock)
