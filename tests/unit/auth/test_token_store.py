"""The token store: ids, salted storage, expiry, use counts, the revocation tree, renewal."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.auth.token import (
    REVOCATION_PENDING,
    TokenStore,
    sanitize_policies,
)
from strongroom.config import parse_duration
from strongroom.durations import human_duration as format_duration
from strongroom.errors import IntegrityError, InvalidRequest
from strongroom.storage.inmem import InmemBackend


def child(store, parent, **kwargs):
    kwargs.setdefault("policies", ["p"])
    kwargs.setdefault("ttl", 3600)
    return store.create(parent=parent, **kwargs)


class RecordingView:
    """An InmemBackend that records every write call, and can fail on demand."""

    def __init__(self):
        self.inner = InmemBackend()
        self.writes: list[tuple] = []
        self.fail_after: int | None = None

    def _write(self, call):
        if self.fail_after is not None:
            if self.fail_after == 0:
                raise OSError("storage went away")
            self.fail_after -= 1
        self.writes.append(call)

    def get(self, key):
        return self.inner.get(key)

    def get_with_index(self, key):
        return self.inner.get_with_index(key)

    def list(self, prefix):
        return self.inner.list(prefix)

    def put(self, key, value):
        self._write(("put", key))
        return self.inner.put(key, value)

    def delete(self, key):
        self._write(("delete", key))
        return self.inner.delete(key)

    def delete_prefix(self, prefix):
        self._write(("delete_prefix", prefix))
        return self.inner.delete_prefix(prefix)

    def txn(self, ops):
        self._write(("txn", tuple(ops)))
        return self.inner.txn(ops)


# --- ids and the entry -----------------------------------------------------------


def test_ids_and_accessors_look_like_vaults(store, root):
    token_id, entry = child(store, root[1])
    assert re.fullmatch(r"hvs\.[0-9A-Za-z]{24}", token_id)
    assert re.fullmatch(r"[0-9A-Za-z]{24}", entry.accessor)
    assert re.fullmatch(r"hvs\.[0-9A-Za-z]{24}", root[0])
    ids = {child(store, root[1])[0] for _ in range(50)}
    assert len(ids) == 50


def test_root_token_defaults(store, clock):
    token_id, entry = store.create_root()
    assert entry.policies == ["root"]
    assert entry.path == "auth/token/root"
    assert entry.display_name == "root"
    assert entry.ttl == 0 and entry.expire_time() is None
    assert entry.orphan and entry.parent == ""
    assert entry.renewable is False
    assert entry.type == "service" and entry.entity_id == "" and entry.num_uses == 0
    assert entry.creation_time == int(clock().timestamp())
    looked = store.lookup(token_id)
    assert looked == entry and looked.id == token_id


def test_root_token_with_chosen_id_for_dev_mode(store):
    token_id, entry = store.create_root(token_id="root")
    assert token_id == "root"
    assert store.lookup("root").accessor == entry.accessor
    with pytest.raises(InvalidRequest, match="duplicate ID"):
        store.create_root(token_id="root")


@pytest.mark.parametrize(
    "bad, message",
    [
        ("hvs.abc", "cannot have the 'hvs.' prefix"),
        ("s.abc", "cannot have the 's.' prefix"),
        ("a.b", "cannot have a '.' in the value"),
    ],
)
def test_custom_ids_may_not_look_generated(store, bad, message):
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        store.create_root(token_id=bad)


def test_policies_are_sanitised(store, root):
    _, entry = store.create(policies=["B", "a", "a", " c ", ""], parent=root[1])
    assert entry.policies == ["a", "b", "c", "default"]
    _, entry = store.create(policies=["b", "a"], add_default=False, parent=root[1])
    assert entry.policies == ["a", "b"]
    _, entry = store.create(policies=["root", "x"], parent=root[1])
    assert entry.policies == ["root"]


def test_repr_never_shows_the_token_id(store, root):
    token_id, entry = child(store, root[1])
    assert token_id not in repr(entry)


def test_expire_time_is_an_aware_datetime(store, root, clock):
    _, entry = child(store, root[1], ttl=90)
    assert (entry.expire_time() - clock()).total_seconds() == 90
    assert entry.expire_time().tzinfo is not None


# --- salted storage -----------------------------------------------------------------


def _all_bytes(view: InmemBackend) -> list[bytes]:
    return [k.encode() for k in view._data] + list(view._data.values())


def test_token_ids_and_accessors_never_stored_in_plaintext(store, view, root, clock):
    secrets = [root[0], root[1].accessor]
    parent_id, parent = child(store, root[1], meta={"k": "v"})
    secrets += [parent_id, parent.accessor]
    for _ in range(3):
        token_id, entry = child(store, parent, num_uses=5)
        secrets += [token_id, entry.accessor]
        store.use(store.lookup(token_id))
    store.renew(store.lookup(parent_id), 600)
    store.revoke_orphan(parent_id)
    for secret in secrets:
        for blob in _all_bytes(view):
            assert secret.encode() not in blob
            assert secret.encode().hex().encode() not in blob


def test_storage_layout_is_keyed_by_hmac(store, view, root):
    token_id, entry = child(store, root[1])
    salt = view.get("salt")
    assert len(salt) == 32

    def mac(value):
        return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()

    assert set(view._data) == {
        "salt",
        f"id/{mac(root[0])}",
        f"accessor/{mac(root[1].accessor)}",
        f"id/{mac(token_id)}",
        f"accessor/{mac(entry.accessor)}",
        f"parent/{mac(root[0])}/{mac(token_id)}",
    }
    assert entry.parent == mac(root[0])
    stored = json.loads(view.get(f"id/{mac(token_id)}"))
    assert "id" not in stored
    assert json.loads(view.get(f"accessor/{mac(entry.accessor)}"))["id_hash"] == mac(token_id)


def test_salt_is_created_once_and_shared(view, clock):
    first = TokenStore(view, clock)
    assert first.lookup("anything") is None
    assert view.get("salt") is None  # lookups never create it
    token_id, _ = first.create_root()
    salt = view.get("salt")
    second = TokenStore(view, clock)
    second.create_root()
    assert view.get("salt") == salt
    assert second.lookup(token_id) is not None


def test_a_moved_entry_fails_its_integrity_check(store, view, root):
    a_id, a = child(store, root[1])
    b_id, b = child(store, root[1])
    salt = view.get("salt")
    key_a = "id/" + hmac.new(salt, a_id.encode(), hashlib.sha256).hexdigest()
    key_b = "id/" + hmac.new(salt, b_id.encode(), hashlib.sha256).hexdigest()
    view.put(key_b, view.get(key_a))
    with pytest.raises(IntegrityError):
        store.lookup(b_id)


def test_creation_is_one_transaction(clock):
    view = RecordingView()
    store = TokenStore(view, clock)
    _, root = store.create_root()
    view.writes.clear()
    child(store, root)
    assert len(view.writes) == 1
    verb, ops = view.writes[0]
    assert verb == "txn"
    assert sorted((op.verb, op.key.split("/")[0]) for op in ops) == [
        ("check-not-exists", "id"),
        ("set", "accessor"),
        ("set", "id"),
        ("set", "parent"),
    ]


def test_revocation_writes_one_transaction_per_token_within_consul_limits(clock):
    view = RecordingView()
    store = TokenStore(view, clock)
    _, parent = store.create_root()
    tokens = [child(store, parent) for _ in range(40)]
    view.writes.clear()
    store.revoke_accessor(parent.accessor)
    txns = [w for w in view.writes if w[0] == "txn"]
    # One checked write marks the root pending, then one transaction deletes each token.
    assert [op.verb for op in txns[0][1]] == ["check-index", "set"]
    assert len(txns) == 1 + 41
    assert all(len(ops) <= 64 for _, ops in txns)
    assert all(store.lookup(t) is None for t, _ in tokens)


def test_failed_write_leaves_nothing_behind(clock):
    view = RecordingView()
    store = TokenStore(view, clock)
    _, root = store.create_root()
    before = dict(view.inner._data)
    view.fail_after = 0
    with pytest.raises(OSError):
        child(store, root)
    assert view.inner._data == before


# --- lookup and expiry ---------------------------------------------------------------


def test_lookup_of_unknown_or_empty_ids(store, root):
    assert store.lookup("hvs.nope") is None
    assert store.lookup("") is None
    assert store.lookup_accessor("nope") is None
    assert store.lookup_accessor("") is None


def test_token_expires_with_the_clock_and_is_revoked_lazily(store, view, root, clock):
    token_id, entry = child(store, root[1], ttl=60)
    keys_before = set(view._data)
    clock.advance(59)
    assert store.lookup(token_id) is not None
    clock.advance(1)
    assert store.lookup(token_id) is None
    assert store.lookup_accessor(entry.accessor) is None
    assert len(view._data) == len(keys_before) - 3  # id, accessor and parent index are gone


def test_children_die_with_an_expired_parent(store, root, clock):
    parent_id, parent = child(store, root[1], ttl=60)
    child_id, _ = child(store, parent, ttl=3600)
    grandchild_id, grandchild = child(store, store.lookup(child_id), ttl=3600)
    clock.advance(61)
    assert store.lookup(grandchild_id) is None
    assert store.lookup(child_id) is None
    assert store.lookup(parent_id) is None
    assert store.lookup_accessor(grandchild.accessor) is None


def test_lookup_accessor_hides_the_id(store, root):
    token_id, entry = child(store, root[1])
    found = store.lookup_accessor(entry.accessor)
    assert found.id == ""
    assert found.accessor == entry.accessor and found.policies == entry.policies


def test_list_accessors_shows_live_tokens_only(store, root, clock):
    _, short = child(store, root[1], ttl=10)
    _, long = child(store, root[1], ttl=100)
    gone_id, gone = child(store, root[1])
    store.revoke(gone_id)
    clock.advance(11)
    assert sorted(store.list_accessors()) == sorted([root[1].accessor, long.accessor])


# --- use counts ------------------------------------------------------------------------


def test_limited_use_token_allows_exactly_num_uses(store, root):
    token_id, _ = child(store, root[1], num_uses=3)
    seen = []
    for _ in range(3):
        entry = store.lookup(token_id)
        assert entry is not None
        used = store.use(entry)
        assert used is not None and used.id == token_id
        assert entry.num_uses == used.num_uses  # updated in place too
        seen.append(used.num_uses)
    assert seen == [2, 1, REVOCATION_PENDING]
    assert store.lookup(token_id) is None


def test_use_of_a_spent_entry_is_refused(store, root):
    token_id, _ = child(store, root[1], num_uses=1)
    first = store.lookup(token_id)
    second = store.lookup(token_id)  # looked up concurrently, before the first use
    assert store.use(first) is not None
    assert store.use(second) is None
    assert store.use(first) is None


def test_unlimited_tokens_are_not_rewritten_on_use(clock):
    view = RecordingView()
    store = TokenStore(view, clock)
    token_id, root = store.create_root()
    view.writes.clear()
    assert store.use(store.lookup(token_id)) is not None
    assert view.writes == []


# --- revocation ------------------------------------------------------------------------


def test_revoking_a_parent_revokes_the_whole_tree(store, view, root):
    parent_id, parent = child(store, root[1])
    kids = [child(store, parent) for _ in range(3)]
    grandkids = [child(store, store.lookup(kids[0][0])) for _ in range(2)]
    assert store.revoke(parent_id) is True
    for token_id, _ in [*kids, *grandkids]:
        assert store.lookup(token_id) is None
    assert store.lookup(root[0]) is not None
    salt = view.get("salt")
    root_hash = hmac.new(salt, root[0].encode(), hashlib.sha256).hexdigest()
    assert set(view._data) == {
        "salt",
        f"id/{root_hash}",
        "accessor/" + hmac.new(salt, root[1].accessor.encode(), hashlib.sha256).hexdigest(),
    }
    assert store.revoke(parent_id) is False


def test_deep_chains_revoke_without_recursion(store, root):
    parent = root[1]
    chain = []
    for _ in range(300):
        token_id, parent = child(store, parent)
        chain.append(token_id)
    store.revoke(chain[0])
    assert all(store.lookup(t) is None for t in chain[::50])


def test_revoke_orphan_keeps_children_as_orphans(store, root):
    parent_id, parent = child(store, root[1])
    kid_id, kid = child(store, parent)
    grandkid_id, grandkid = child(store, store.lookup(kid_id))
    assert store.revoke_orphan(parent_id) is True
    assert store.lookup(parent_id) is None
    kid_now = store.lookup(kid_id)
    assert kid_now.orphan and kid_now.parent == ""
    assert store.lookup(grandkid_id).parent == kid.salted_id
    # The orphan no longer dies with its former grandparent's tree.
    store.revoke(root[0])
    assert store.lookup(kid_id) is not None
    assert store.revoke_orphan("hvs.unknown") is False


def test_revoke_accessor(store, root):
    token_id, entry = child(store, root[1])
    kid_id, _ = child(store, store.lookup(token_id))
    assert store.revoke_accessor(entry.accessor) is True
    assert store.lookup(token_id) is None and store.lookup(kid_id) is None
    assert store.revoke_accessor(entry.accessor) is False


def test_interrupted_revocation_never_leaves_a_usable_child(clock):
    view = RecordingView()
    store = TokenStore(view, clock)
    _, root = store.create_root()
    parent_id, parent = child(store, root)
    kid_id, _ = child(store, parent)
    view.fail_after = 1  # the "pending" mark lands, then storage fails
    with pytest.raises(OSError):
        store.revoke(parent_id)
    view.fail_after = None
    assert store.lookup(parent_id) is None
    assert store.lookup(kid_id) is None
    # tidy finishes the job.
    assert store.tidy() >= 1
    assert store.list_accessors() == [root.accessor]


def test_child_of_a_vanished_parent_fails_closed(store, view, root):
    parent_id, parent = child(store, root[1])
    kid_id, _ = child(store, parent)
    view.delete("id/" + parent.salted_id)  # as if a revocation raced with the child's creation
    assert store.lookup(kid_id) is None


def test_children_cannot_be_created_under_a_revoked_parent(store, root):
    parent_id, parent = child(store, root[1])
    store.revoke(parent_id)
    with pytest.raises(InvalidRequest, match="parent token not found"):
        child(store, parent)


def test_tidy_sweeps_expired_tokens_nobody_looked_up(store, view, root, clock):
    for _ in range(5):
        child(store, root[1], ttl=30)
    clock.advance(31)
    assert store.tidy() == 5
    assert store.list_accessors() == [root[1].accessor]
    assert len(view.list("accessor/")) == 1
    assert view.list("parent/") == []


def test_tidy_reads_each_entry_once_per_pass(store, view, root):
    a_id, _ = child(store, root[1])
    child(store, store.lookup(a_id))
    child(store, store.lookup(a_id))
    child(store, root[1])
    view.reads.clear()
    assert store.tidy() == 0
    # Once while checking tokens (for itself and as an ancestor), once while checking links.
    assert {key: n for key, n in view.reads.items() if key.startswith("id/")} == {
        "id/" + name: 2 for name in view.list("id/")
    }


def test_tidy_reads_a_dead_entry_once(store, view, root, clock):
    pending_id, pending = child(store, root[1])
    _, expired = child(store, root[1], ttl=30)
    live_id, _ = child(store, root[1], ttl=3600)
    record = json.loads(view.get("id/" + pending.salted_id))
    record["num_uses"] = REVOCATION_PENDING  # as an interrupted revocation leaves it
    view.put("id/" + pending.salted_id, json.dumps(record).encode())
    clock.advance(31)
    view.reads.clear()
    assert store.tidy() == 2
    assert view.reads["id/" + pending.salted_id] == view.reads["id/" + expired.salted_id] == 1
    assert sorted(store.list_accessors()) == sorted([root[1].accessor, store.lookup(live_id).accessor])
    assert store.lookup(pending_id) is None


# --- renewal and TTL rules ------------------------------------------------------------


def test_renew_without_increment_grants_the_last_ttl_again(store, root, clock):
    token_id, entry = child(store, root[1], ttl=3600)
    clock.advance(100)
    renewed, warnings = store.renew(store.lookup(token_id))
    assert renewed.lease_ttl == 3600 and warnings == []
    assert renewed.expire_at == clock().timestamp() + 3600
    assert renewed.ttl == 3600  # the creation TTL is kept
    renewed, _ = store.renew(renewed, 600)
    assert renewed.lease_ttl == 600
    renewed, _ = store.renew(renewed)
    assert renewed.lease_ttl == 600
    assert store.lookup(token_id).last_renewal == clock().timestamp()


def test_renew_is_capped_by_max_ttl_from_the_issue_time(view, clock):
    store = TokenStore(view, clock, default_ttl=3600, max_ttl=7200)
    _, root = store.create_root()
    token_id, _ = child(store, root)
    clock.advance(1000)
    renewed, warnings = store.renew(store.lookup(token_id), 10 * 3600)
    assert renewed.lease_ttl == 6200
    assert warnings == ['TTL of "10h" exceeded the effective max_ttl of "1h43m20s"; TTL value is capped accordingly']


def test_renew_respects_explicit_max_ttl(store, root, clock):
    token_id, _ = child(store, root[1], ttl=3600, explicit_max_ttl=5400)
    renewed, warnings = store.renew(store.lookup(token_id), 7200)
    assert renewed.lease_ttl == 5400
    assert warnings == ['TTL of "2h" exceeded the effective max_ttl of "1h30m"; TTL value is capped accordingly']
    clock.advance(5400)
    assert store.lookup(token_id) is None


def test_periodic_tokens_renew_to_their_period_forever(store, root, clock):
    token_id, _ = child(store, root[1], ttl=3600, period=3600)
    for _ in range(40 * 24):  # 800h: well past the 768h max TTL
        clock.advance(3000)
        renewed, _ = store.renew(store.lookup(token_id), 10)
        assert renewed.lease_ttl == 3600
    assert store.lookup(token_id) is not None


def test_periodic_token_with_explicit_max_ttl_stops_there(store, root, clock):
    token_id, _ = child(store, root[1], ttl=3600, period=3600, explicit_max_ttl=3 * 3600)
    for _ in range(2):
        clock.advance(3000)
        assert store.renew(store.lookup(token_id)) == (store.lookup(token_id), [])
    clock.advance(3000)
    renewed, warnings = store.renew(store.lookup(token_id))
    assert renewed.lease_ttl == 1800 and warnings
    clock.advance(1800)
    assert store.lookup(token_id) is None


def test_renew_refuses_non_renewable_tokens(store, root):
    with pytest.raises(InvalidRequest, match="lease is not renewable"):
        store.renew(root[1])
    token_id, _ = child(store, root[1], renewable=False)
    with pytest.raises(InvalidRequest, match="lease is not renewable"):
        store.renew(store.lookup(token_id))


def test_renew_of_a_revoked_token(store, root):
    token_id, entry = child(store, root[1])
    store.revoke(token_id)
    entry.id = token_id
    with pytest.raises(InvalidRequest, match="token not found"):
        store.renew(entry)


def test_plan_ttl_defaults_and_caps(view, clock):
    store = TokenStore(view, clock)
    assert store.plan_ttl() == (2764800, [])
    assert store.plan_ttl(ttl=60) == (60, [])
    assert store.plan_ttl(ttl=99999999) == (
        2764800,
        ['TTL of "27777h46m39s" exceeded the effective max_ttl of "768h"; TTL value is capped accordingly'],
    )
    assert store.plan_ttl(ttl=7200, explicit_max_ttl=3600) == (
        3600,
        ['TTL of "2h" exceeded the effective max_ttl of "1h"; TTL value is capped accordingly'],
    )
    assert store.plan_ttl(ttl=5, period=3600) == (3600, [])
    ttl, warnings = store.plan_ttl(period=10**7)
    assert ttl == 2764800 and warnings[0].startswith('period of "2777h46m40s" exceeded')


# --- helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0s"),
        (45, "45s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (3601, "1h0m1s"),
        (5400, "1h30m"),
        (2764800, "768h"),
        (2764798, "767h59m58s"),
    ],
)
def test_format_duration_matches_vaults_warnings(seconds, text):
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**9))
def test_format_duration_round_trips_through_parse_duration(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.lists(st.text(alphabet="abcXYZ -_root", max_size=6), max_size=8), st.booleans())
def test_sanitize_policies_properties(names, add_default):
    out = sanitize_policies(names, add_default)
    assert out == sorted(set(out))
    assert all(p == p.strip().lower() and p for p in out)
    if "root" in out:
        assert out == ["root"]
    elif add_default:
        assert "default" in out


@given(st.data())
def test_revocation_tree_matches_a_model(data):
    """Random token forests under random tree and orphan revocations."""
    from tests.helpers.unit_node import FakeClock

    store = TokenStore(InmemBackend(), FakeClock())
    count = data.draw(st.integers(min_value=1, max_value=12))
    ids, parents = [], []
    root_id, entry = store.create_root()
    ids.append(root_id)
    parents.append(None)
    entries = [entry]
    for n in range(1, count):
        parent = data.draw(st.integers(min_value=0, max_value=n - 1))
        token_id, entry = store.create(policies=["p"], parent=entries[parent], ttl=3600)
        ids.append(token_id)
        parents.append(parent)
        entries.append(entry)
    alive = set(range(count))
    operations = data.draw(
        st.lists(
            st.tuples(st.sampled_from(["tree", "orphan"]), st.integers(min_value=0, max_value=count - 1)), max_size=6
        )
    )
    for kind, target in operations:
        if kind == "tree":
            store.revoke(ids[target])
            doomed, frontier = set(), [target] if target in alive else []
            while frontier:
                node = frontier.pop()
                doomed.add(node)
                frontier += [c for c in alive if parents[c] == node and c not in doomed]
            alive -= doomed
        else:
            store.revoke_orphan(ids[target])
            if target in alive:
                for c in alive:
                    if parents[c] == target:
                        parents[c] = None
                alive.discard(target)
        for n in range(count):
            found = store.lookup(ids[n])
            assert (found is not None) == (n in alive)
            if found is not None:
                assert found.orphan == (parents[n] is None)
    assert sorted(store.list_accessors()) == sorted(entries[n].accessor for n in alive)


# --- decoded entries are reused (token_records), never shared -----------------------


def test_every_lookup_gets_an_entry_of_its_own(store, root):
    token_id, _ = child(store, root[1], meta={"team": "a"})
    first = store.lookup(token_id)
    first.policies.append("injected")
    first.meta["team"] = "changed"
    first.num_uses = 99
    second = store.lookup(token_id)
    assert second is not first
    assert second.policies == ["default", "p"] and second.meta == {"team": "a"} and second.num_uses == 0
    assert second.id == token_id and second.accessor == first.accessor


def test_a_lookup_sees_the_record_as_last_written(store, root):
    token_id, _ = child(store, root[1], num_uses=3)
    entry = store.lookup(token_id)
    assert store.use(entry).num_uses == 2
    assert store.lookup(token_id).num_uses == 2


def test_a_revocation_settles_once_after_its_last_write(clock):
    # With performance standbys the store waits ``settle`` seconds after the
    # revocation committed, so no standby's cache still vouches for the token
    # when the caller answers (storage/changes.py SETTLE).
    view = RecordingView()
    pauses: list[tuple[float, int]] = []
    store = TokenStore(view, clock, settle=0.16, sleep=lambda s: pauses.append((s, len(view.writes))))
    _, root = store.create_root()
    parent_id, parent = child(store, root)
    for _ in range(3):
        child(store, parent)
    for revoke in (
        lambda: store.revoke(parent_id),
        lambda: store.revoke_accessor(child(store, root)[1].accessor),
        lambda: store.revoke_live(child(store, root)[0]),
        lambda: store.revoke_orphan(child(store, root)[0]),
        lambda: store.revoke_salted(child(store, root)[1].salted_id),
    ):
        pauses.clear()
        assert revoke()
        # One pause, after every write of the revocation.
        assert pauses == [(0.16, len(view.writes))]


def test_revoking_many_leases_settles_once(clock):
    from strongroom.auth.token_leases import TokenLeases, lease_id

    view = RecordingView()
    pauses: list[float] = []
    store = TokenStore(view, clock, settle=0.16, sleep=pauses.append)
    _, root = store.create_root()
    leases = [lease_id(child(store, root)[1]) for _ in range(4)]
    assert TokenLeases(store).revoke_prefix("auth/token/create/") == 4
    assert pauses == [0.16]
    assert all(TokenLeases(store).entry(lease) is None for lease in leases)
    # Nothing revoked: nothing to wait for.
    assert TokenLeases(store).revoke_prefix("auth/token/create/") == 0
    assert not store.revoke_accessor("no-such-accessor")
    assert pauses == [0.16]


def test_without_standbys_a_revocation_does_not_wait(clock):
    pauses: list[float] = []
    store = TokenStore(RecordingView(), clock, sleep=pauses.append)
    _, root = store.create_root()
    assert store.revoke(child(store, root)[0])
    assert pauses == []
