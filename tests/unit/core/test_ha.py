"""``HAManager`` (core/ha.py): the leader lock, the node's role, its registration.

https://developer.hashicorp.com/vault/docs/concepts/ha

The manager runs its real election and heartbeat threads against a fake
Consul: ``FakeConsul`` keeps one lock key, the live sessions and the service
catalog, and each node talks to it through ``FakeSessions`` and
``FakeRegistry`` (the methods ``HAManager`` calls on the storage layer's
``ConsulSessions`` and ``ConsulRegistry``).  Each node has its own hand-moved
monotonic clock for the step-down holdoff and the heartbeat TTL.  Nothing
sleeps and hopes: every test polls a condition with a deadline, and "did not
compete" is checked after the election loop has provably run again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest

from strongroom.core.ha import ACTIVE, LOCK_KEY, PERFSTANDBY, SEALED, STANDBY, HAManager
from strongroom.errors import LockLost, StorageUnavailable

DEADLINE = 5.0
#: Longest a fake blocking query blocks in real time (Consul may answer early, unchanged).
MAX_BLOCK = 0.05


def eventually(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``condition`` until it holds, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.005)


class FakeMonotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeConsul:
    """One lock key with Consul's session semantics, and a service catalog.

    ``log`` records, in order, what every node did to the lock and what it
    published to its workers, so tests can check the order of the two."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.index = 1
        self.value: bytes | None = None
        self.holder: str | None = None
        self.sessions: set[str] = set()
        self.services: dict[str, dict] = {}
        self.log: list[tuple] = []
        self._next = 0

    def bump(self) -> None:
        self.index += 1
        self.cond.notify_all()

    def invalidate(self, session: str) -> None:
        """What Consul does when a session's check fails: the session goes,
        and with ``behavior=release`` the lock is released (its value stays)."""
        with self.cond:
            self.sessions.discard(session)
            if self.holder == session:
                self.holder = None
            self.bump()

    def take(self, session: str) -> None:
        """Another node's session takes the (free) lock."""
        with self.cond:
            assert self.holder is None
            self.sessions.add(session)
            self.holder, self.value = session, json.dumps({"node_id": "other", "api_addr": "http://o:8200"}).encode()
            self.bump()

    def fenced_write(self, fence: tuple[str, str] | None) -> bool:
        """A write transaction starting with ``check-session`` on the fence."""
        with self.cond:
            return fence is not None and fence[0] == LOCK_KEY and self.holder == fence[1]


class FakeSessions:
    """The session and lock calls ``HAManager`` makes (``storage.consul_session.ConsulSessions``)."""

    def __init__(self, consul: FakeConsul, node: str):
        self.consul, self.node = consul, node
        self.created: list[dict] = []
        self.acquires = 0
        self.waits = 0
        self.destroyed: list[str] = []

    def create_session(self, name: str, checks: list[str], lock_delay: str = "15s", behavior: str = "release") -> str:
        with self.consul.cond:
            self.consul._next += 1
            session = f"{self.node}-session-{self.consul._next}"
            self.consul.sessions.add(session)
            self.created.append({"id": session, "name": name, "checks": checks, "lock_delay": lock_delay})
            return session

    def destroy_session(self, session_id: str) -> None:
        self.destroyed.append(session_id)
        self.consul.invalidate(session_id)

    def acquire(self, key: str, value: bytes, session: str) -> bool:
        assert key == LOCK_KEY
        with self.consul.cond:
            self.acquires += 1
            if session not in self.consul.sessions:
                raise LockLost()
            if self.consul.holder not in (None, session):
                return False
            self.consul.holder, self.consul.value = session, value
            self.consul.log.append((self.node, "acquired"))
            self.consul.bump()
            return True

    def release(self, key: str, session: str) -> bool:
        with self.consul.cond:
            if self.consul.holder != session:
                return False
            self.consul.holder, self.consul.value = None, b""
            self.consul.log.append((self.node, "released"))
            self.consul.bump()
            return True

    def wait_key(self, key: str, index: int, wait: str = "5s") -> tuple[int, bytes | None, str | None]:
        with self.consul.cond:
            self.waits += 1
            if index:
                self.consul.cond.wait_for(lambda: self.consul.index > index, timeout=MAX_BLOCK)
            return self.consul.index, self.consul.value, self.consul.holder


class FakeRegistry:
    """The agent and catalog calls ``HAManager`` makes (``storage.consul_registry.ConsulRegistry``)."""

    def __init__(self, consul: FakeConsul):
        self.consul = consul
        self.checks: dict[str, float] = {}
        self.passes = 0
        self.failing = False
        self.failures = 0
        self.registrations: list[dict] = []

    def register_ttl_check(self, check_id: str, name: str, ttl: float) -> None:
        self.checks[check_id] = ttl

    def pass_check(self, check_id: str) -> None:
        if self.failing:
            self.failures += 1
            raise StorageUnavailable("consul unreachable")
        assert check_id in self.checks
        self.passes += 1

    def deregister_check(self, check_id: str) -> None:
        self.checks.pop(check_id, None)

    def register_service(
        self, service_id: str, name: str, address: str, port: int, tags: list[str], meta: dict[str, str]
    ) -> None:
        instance = {"ID": service_id, "Name": name, "Address": address, "Port": port, "Tags": tags, "Meta": meta}
        self.registrations.append(instance)
        with self.consul.cond:
            self.consul.services[service_id] = instance

    def deregister_service(self, service_id: str) -> None:
        with self.consul.cond:
            self.consul.services.pop(service_id, None)

    def service_instances(self, name: str) -> list[dict]:
        with self.consul.cond:
            return [dict(s) for s in self.consul.services.values() if s["Name"] == name]

    def tags(self) -> list[str]:
        return self.registrations[-1]["Tags"]


class FakeNode:
    """One node's manager wired to the fakes, with its unseal flag and published events."""

    def __init__(self, consul: FakeConsul, name: str, *, unsealed: bool = True, **options):
        self.consul = consul
        self.unsealed = unsealed
        self.clock = FakeMonotonic()
        self.sessions = FakeSessions(consul, name)
        self.registry = FakeRegistry(consul)
        self.published: list[dict] = []
        self.roles: list[str] = []
        options.setdefault("step_down_holdoff", 2.0)
        self.ha = HAManager(
            sessions=self.sessions,
            registry=self.registry,
            is_unsealed=lambda: self.unsealed,
            node_id=name,
            api_addr=f"https://{name}.example:8200",
            publish=self._publish,
            on_role=self.roles.append,
            monotonic=self.clock,
            **options,
        )

    def _publish(self, event: dict) -> None:
        self.published.append(event)
        with self.consul.cond:
            self.consul.log.append((self.ha.node_id, "published", event["ha"]["role"]))

    def start(self) -> FakeNode:
        if self.unsealed:
            self.ha.seal_changed(True)
        self.ha.start(initialized=True)
        return self

    def session(self) -> str:
        return self.sessions.created[-1]["id"]

    def loop_ran(self, times: int = 3) -> None:
        """Wait until the election loop has asked for the lock ``times`` more times."""
        target = self.sessions.waits + times
        eventually(lambda: self.sessions.waits >= target, f"{self.ha.node_id}'s election loop ran")


@pytest.fixture
def consul() -> FakeConsul:
    return FakeConsul()


@pytest.fixture
def nodes(consul):
    """Makes nodes on one fake Consul; stops every one of them at the end."""
    made: list[FakeNode] = []

    def make(name: str, **options) -> FakeNode:
        node = FakeNode(consul, name, **options)
        made.append(node)
        return node

    yield make
    for node in made:
        node.ha.stop()


def test_an_unsealed_node_takes_the_lock_and_becomes_active(consul, nodes):
    a = nodes("a").start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    created = a.sessions.created[-1]
    assert consul.holder == created["id"]
    assert created["checks"] == ["serfHealth", "strongroom:a:alive"]
    assert created["lock_delay"] == "0s"
    assert json.loads(consul.value)["node_id"] == "a"
    assert json.loads(consul.value)["api_addr"] == "https://a.example:8200"
    assert a.ha.fence() == (LOCK_KEY, created["id"])
    state = a.published[-1]["ha"]
    assert (state["role"], state["session"], state["leader_address"]) == (ACTIVE, created["id"], a.ha.api_addr)
    assert a.roles[-1] == ACTIVE


@pytest.mark.parametrize(
    ("performance", "role", "tag"), [(True, PERFSTANDBY, "performance-standby"), (False, STANDBY, "standby")]
)
def test_a_second_node_waits_as_a_standby_that_knows_the_leader(consul, nodes, performance, role, tag):
    a = nodes("a").start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    b = nodes("b", performance_standby=performance).start()
    eventually(lambda: b.published and b.published[-1]["ha"]["leader_node"] == "a", "b learned the leader")
    b.loop_ran()
    assert b.ha.role == role
    assert consul.holder == a.session()
    assert b.ha.fence() is None
    state = b.published[-1]["ha"]
    assert (state["role"], state["session"], state["leader_address"]) == (role, "", "https://a.example:8200")
    assert b.registry.tags()[0] == tag


def test_a_standby_takes_over_when_the_active_nodes_session_is_invalidated(consul, nodes):
    a = nodes("a").start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    b = nodes("b").start()
    b.loop_ran()
    old = a.session()
    consul.invalidate(old)  # a's check failed: Consul releases its lock
    eventually(lambda: b.ha.role == ACTIVE or a.ha.role == ACTIVE and a.session() != old, "someone leads again")
    # Whoever leads now holds the lock with a live session, and a never claims the dead one.
    leader = a if a.ha.role == ACTIVE else b
    assert consul.holder == leader.session() != old
    assert a.ha.fence() != (LOCK_KEY, old)


def test_the_active_node_steps_down_when_another_session_holds_the_lock(consul, nodes):
    a = nodes("a", performance_standby=False).start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    old = a.session()
    with consul.cond:  # a's session expires and another node takes the lock before a notices
        consul.sessions.discard(old)
        consul.holder = None
    consul.take("other-session")
    eventually(lambda: a.ha.role == STANDBY, "a stepped down")
    assert a.ha.fence() is None
    assert a.published[-1]["ha"]["role"] == STANDBY
    assert a.published[-1]["ha"]["leader_node"] == "other"
    assert a.registry.tags()[0] == "standby"
    assert old in a.sessions.destroyed
    assert consul.holder == "other-session"


def test_a_failed_fence_deposes_the_node_and_its_old_fence_never_writes_again(consul, nodes):
    a = nodes("a").start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    fence = a.ha.fence()
    assert consul.fenced_write(fence)
    consul.invalidate(fence[1])
    consul.take("other-session")
    assert not consul.fenced_write(fence)
    # What the Consul backend does when check-session fails: tell the manager at once.
    a.ha.lock_lost()
    assert a.ha.role == PERFSTANDBY
    assert a.ha.fence() is None
    assert a.published[-1]["ha"]["role"] == PERFSTANDBY
    assert a.published[-1]["ha"]["session"] == ""
    assert a.registry.tags()[0] == "performance-standby"
    a.loop_ran()
    assert a.ha.role == PERFSTANDBY
    assert a.ha.fence() is None
    assert consul.holder == "other-session"


def test_step_down_releases_the_lock_and_stays_out_for_the_holdoff(consul, nodes):
    a = nodes("a", step_down_holdoff=5.0).start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    a.ha.step_down()
    assert consul.holder is None  # released before step_down returns
    assert a.ha.role == PERFSTANDBY
    assert a.ha.fence() is None
    acquires = a.sessions.acquires
    a.loop_ran()
    a.clock.advance(4.9)
    a.loop_ran()
    assert a.sessions.acquires == acquires, "competed during the holdoff"
    assert consul.holder is None
    a.clock.advance(0.2)
    eventually(lambda: a.ha.role == ACTIVE, "a leads again after the holdoff")
    assert consul.holder == a.session()


def test_step_down_hands_the_lock_to_a_standby(consul, nodes):
    a = nodes("a").start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    b = nodes("b").start()
    b.loop_ran()
    a.ha.step_down()
    eventually(lambda: b.ha.role == ACTIVE, "b took over")
    a.loop_ran()
    assert a.ha.role == PERFSTANDBY
    assert a.published[-1]["ha"]["leader_node"] == "b"


def test_a_sealed_node_never_competes(consul, nodes):
    a = nodes("a", unsealed=False).start()
    a.loop_ran()
    a.clock.advance(60)
    a.loop_ran()
    assert a.sessions.acquires == 0
    assert a.sessions.created == []
    assert consul.holder is None
    assert a.ha.role == SEALED
    assert a.registry.tags() == ["sealed", "initialized"]
    a.unsealed = True
    a.ha.seal_changed(True)
    eventually(lambda: a.ha.role == ACTIVE, "a competes once unsealed")


def test_sealing_the_active_node_tells_the_workers_then_releases_the_lock(consul, nodes):
    a = nodes("a").start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    a.unsealed = False
    a.ha.seal_changed(False)
    assert consul.holder is None
    assert a.ha.role == SEALED
    assert a.ha.fence() is None
    published = consul.log.index(("a", "published", SEALED))
    assert published < consul.log.index(("a", "released"))
    a.loop_ran()
    assert consul.holder is None


def test_registration_tags_follow_the_role(consul, nodes):
    a = nodes("a", unsealed=False, service_tags=("blue",))
    a.ha.start(initialized=False)
    assert a.registry.registrations[0] == {
        "ID": "strongroom-a",
        "Name": "strongroom",
        "Address": "a.example",
        "Port": 8200,
        "Tags": ["blue", "sealed"],
        "Meta": {"node_id": "a"},
    }
    a.unsealed = True
    a.ha.seal_changed(True)
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    assert a.registry.tags() == ["blue", "active", "initialized"]
    a.ha.step_down()
    assert a.registry.tags() == ["blue", "performance-standby", "initialized"]
    # sys/ha-status lists the registered instance; no node leads once a's watch saw the release.
    eventually(lambda: a.ha.state()["leader_node"] == "", "a saw the lock free")
    assert [(n["hostname"], n["api_address"], n["active_node"]) for n in a.ha.cluster_nodes()] == [
        ("a", "https://a.example:8200", False)
    ]
    a.ha.stop()
    assert consul.services == {}
    assert a.registry.checks == {}


def test_registration_can_be_turned_off(consul, nodes):
    a = nodes("a", register_service=False).start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    assert a.registry.registrations == []
    assert "strongroom:a:alive" in a.registry.checks  # the lock's health check is still needed


def test_an_active_node_that_cannot_reach_consul_for_a_ttl_stops_leading(consul, nodes):
    a = nodes("a", check_ttl=0.5).start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    eventually(lambda: a.registry.passes > 0, "a heartbeat passed")
    a.registry.failing = True
    eventually(lambda: a.registry.failures > 0, "a heartbeat failed")  # no success is in flight now
    a.clock.advance(0.4)  # within the TTL of the last success: still the leader
    failures = a.registry.failures
    eventually(lambda: a.registry.failures >= failures + 2, "more heartbeats failed")
    assert a.ha.role == ACTIVE
    seen = len(a.roles)
    a.clock.advance(0.2)
    # The fake lock itself stays reachable, so the election loop may take it straight back:
    # what must happen is the step down (the role the workers are told), not a lasting state.
    eventually(lambda: PERFSTANDBY in a.roles[seen:], "a stopped claiming to lead")


def test_stop_releases_the_lock_at_once(consul, nodes):
    a = nodes("a").start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    b = nodes("b").start()
    a.ha.stop()
    assert consul.holder is None or consul.holder == b.session()
    assert a.roles[-1] == PERFSTANDBY
    eventually(lambda: b.ha.role == ACTIVE, "b took over")


def test_a_node_that_steps_down_never_names_itself_the_leader(consul, nodes):
    """Until the lock watch finds the next leader there is none: workers told "the leader is
    this node" would forward writes back to their own node."""
    a = nodes("a", step_down_holdoff=5.0).start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    eventually(lambda: a.ha.state()["leader_node"] == "a", "a knows it leads")
    a.ha.step_down()
    after = [event["ha"] for event in a.published if event["ha"]["role"] == PERFSTANDBY]
    assert after and all(state["leader_node"] != "a" for state in after), after
    assert a.ha.state()["leader_address"] != "https://a.example:8200"
