"""``HAManager`` (core/ha.py) on a real Consul agent: the leader lock, the node's role,
its registration.

https://developer.hashicorp.com/vault/docs/concepts/ha

Each manager runs its real election and heartbeat threads over the storage
layer's real ``ConsulSessions`` and ``ConsulRegistry`` against a Consul agent
started for this module (each test on a key prefix of its own).  The two are
subclassed only to *record* what the manager asked of them (sessions created,
acquires, watches, registrations) and, for the watches, to ask Consul for a
short blocking wait so the tests run fast; every answer is Consul's.  What
another node would do to the lock is done with Consul's own API.  Each node has
its own hand-moved monotonic clock for the step-down holdoff and the heartbeat
TTL.  Nothing sleeps and hopes: every test polls a condition with a deadline,
and "did not compete" is checked after the election loop has provably run again.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import consul as py_consul
import pytest

from strongroom.core.ha import ACTIVE, LOCK_KEY, PERFSTANDBY, SEALED, STANDBY, HAManager
from strongroom.errors import LockLost, StrongroomError
from strongroom.storage.consul import ConsulBackend
from strongroom.storage.consul_registry import ConsulRegistry
from strongroom.storage.consul_session import ConsulSessions
from tests.helpers.procs import ConsulAgent, start_agent
from tests.helpers.procs.consul_agents import ConsulClientAgent

DEADLINE = 10.0
#: The blocking wait the recorded watches ask Consul for (the manager asks 1-2 s).
WATCH_WAIT = "100ms"


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


class Consul:
    """One test's view of the real agent: its key prefix, the lock, and an ordered
    ``log`` of what the nodes did to the lock and published to their workers."""

    def __init__(self, agent: ConsulAgent):
        self.agent = agent
        self.client: py_consul.Consul = agent.client()
        self.prefix = f"ha-{uuid.uuid4().hex}/"
        self.log: list[tuple] = []
        self.log_lock = threading.Lock()

    def record(self, *entry: object) -> None:
        with self.log_lock:
            self.log.append(entry)

    def _lock_entry(self) -> dict | None:
        _, entry = self.client.kv.get(self.prefix + LOCK_KEY)
        return entry

    @property
    def holder(self) -> str | None:
        entry = self._lock_entry()
        return None if entry is None else entry.get("Session") or None

    @property
    def value(self) -> bytes:
        entry = self._lock_entry()
        return b"" if entry is None else entry.get("Value") or b""

    def invalidate(self, session: str) -> None:
        """What Consul does when a session's check fails: the session goes, and
        with ``behavior=release`` its lock is released."""
        self.client.session.destroy(session)

    def take(self, session: str) -> bool:
        """Another node's session takes the lock (False if it is not free)."""
        value = json.dumps({"node_id": "other", "api_addr": "http://o:8200"}).encode()
        return bool(self.client.kv.put(self.prefix + LOCK_KEY, value, acquire=session))

    def other_session(self) -> str:
        return self.client.session.create(name="other", checks=["serfHealth"], lock_delay=0, behavior="release")

    def steal_lock(self, victim: Node) -> str:
        """``victim``'s session expires and another node takes the lock before the
        victim can take it back (retried: the victim's election loop may win a round)."""
        other = self.other_session()
        deadline = time.monotonic() + DEADLINE
        while True:
            holder = self.holder
            if holder is not None and holder != other:
                self.invalidate(holder)
            if self.take(other):
                # The victim's loop may be between winning a round and calling itself active
                # (with the session just invalidated): once it has asked for the lock again,
                # that round is over, and the role the test sees next is not overturned by it.
                victim.loop_ran(1)
                return other
            if time.monotonic() > deadline:
                pytest.fail(f"could not take the lock from {victim.ha.node_id}")

    def fenced_write(self, fence: tuple[str, str] | None) -> bool:
        """A write transaction that starts with ``check-session`` on ``fence``."""
        backend = ConsulBackend.from_config(self.agent.address, prefix=self.prefix, fence=lambda: fence)
        try:
            backend.put("fenced-probe", b"x")
            return True
        except LockLost:
            return False
        finally:
            backend.close()

    def services(self) -> dict:
        return self.client.agent.services()

    def checks(self) -> dict:
        return self.client.agent.checks()


class RecordingSessions(ConsulSessions):
    """The real ``ConsulSessions``, recording what the manager asked of it."""

    def __init__(self, cluster: Consul, node: str):
        super().__init__(cluster.client, prefix=cluster.prefix)
        self.cluster, self.node = cluster, node
        self.created: list[dict] = []
        self.acquires = 0
        self.waits = 0
        self.destroyed: list[str] = []

    def create_session(
        self, name: str, checks: list[str], lock_delay: str = "0s", behavior: str = "release", ttl: str | None = None
    ) -> str:
        session = super().create_session(name, checks, lock_delay=lock_delay, behavior=behavior, ttl=ttl)
        self.created.append({"id": session, "name": name, "checks": checks, "lock_delay": lock_delay})
        return session

    def destroy_session(self, session_id: str) -> None:
        self.destroyed.append(session_id)
        super().destroy_session(session_id)

    def acquire(self, key: str, value: bytes, session: str) -> bool:
        self.acquires += 1
        acquired = super().acquire(key, value, session)
        if acquired:
            self.cluster.record(self.node, "acquired")
        return acquired

    def release(self, key: str, session: str) -> bool:
        released = super().release(key, session)
        if released:
            self.cluster.record(self.node, "released")
        return released

    def wait_key(self, key: str, index: int, wait: str = "5s") -> tuple[int, bytes | None, str | None]:
        self.waits += 1
        return super().wait_key(key, index, wait=WATCH_WAIT)


class RecordingRegistry(ConsulRegistry):
    """The real ``ConsulRegistry``, recording registrations and heartbeats."""

    def __init__(self, cluster: Consul):
        super().__init__(cluster.client, cluster.prefix)
        self.passes = 0
        self.failures = 0
        self.registrations: list[dict] = []

    def pass_check(self, check_id: str) -> None:
        try:
            super().pass_check(check_id)
        except StrongroomError:
            self.failures += 1
            raise
        self.passes += 1

    def register_service(
        self, service_id: str, name: str, address: str, port: int, tags: list[str], meta: dict[str, str]
    ) -> None:
        super().register_service(service_id, name, address, port, tags, meta)
        self.registrations.append(
            {"ID": service_id, "Name": name, "Address": address, "Port": port, "Tags": tags, "Meta": meta}
        )

    def tags(self) -> list[str]:
        return self.registrations[-1]["Tags"]


class Node:
    """One node's manager on the real agent, with its unseal flag and published events."""

    def __init__(self, cluster: Consul, name: str, *, unsealed: bool = True, **options):
        self.cluster = cluster
        self.unsealed = unsealed
        self.clock = FakeMonotonic()
        self.sessions = RecordingSessions(cluster, name)
        self.registry = RecordingRegistry(cluster)
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
        self.cluster.record(self.ha.node_id, "published", event["ha"]["role"])

    def start(self) -> Node:
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


@pytest.fixture(scope="module")
def agent() -> Iterator[ConsulAgent]:
    """A Consul agent of this module's own: the tests register services and checks
    named after their nodes, which must not meet other modules' registrations."""
    started = start_agent()
    try:
        yield started
    finally:
        started.stop()


def make_nodes(cluster: Consul) -> Iterator[Callable[..., Node]]:
    made: list[Node] = []

    def make(name: str, **options) -> Node:
        node = Node(cluster, name, **options)
        made.append(node)
        return node

    yield make
    for node in made:
        node.ha.stop()
    cluster.client.kv.delete(cluster.prefix, recurse=True)


@pytest.fixture
def consul(agent) -> Consul:
    return Consul(agent)


@pytest.fixture
def nodes(consul) -> Iterator[Callable[..., Node]]:
    """Makes nodes on the agent; stops every one of them at the end."""
    yield from make_nodes(consul)


def test_an_unsealed_node_takes_the_lock_and_becomes_active(consul, nodes):
    a = nodes("a").start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    created = a.sessions.created[-1]
    assert consul.holder == created["id"]
    assert created["checks"] == ["serfHealth", "strongroom:a:alive"]
    assert created["lock_delay"] == "0s"
    info = consul.client.session.info(created["id"])[1]
    assert sorted(info["Checks"] if "Checks" in info else info["NodeChecks"]) == ["serfHealth", "strongroom:a:alive"]
    assert info["LockDelay"] == 0
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
    eventually(lambda: consul.holder == leader.session(), "the leader's session holds the lock")
    assert consul.holder != old
    assert a.ha.fence() != (LOCK_KEY, old)


def test_the_active_node_steps_down_when_another_session_holds_the_lock(consul, nodes):
    a = nodes("a", performance_standby=False).start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    old = a.session()
    other = consul.steal_lock(a)  # a's session expires and another node takes the lock before a notices
    eventually(lambda: a.ha.role == STANDBY, "a stepped down")
    eventually(lambda: a.published[-1]["ha"]["leader_node"] == "other", "a learned the new leader")
    assert a.ha.fence() is None
    assert a.published[-1]["ha"]["role"] == STANDBY
    assert a.registry.tags()[0] == "standby"
    eventually(lambda: old in a.sessions.destroyed, "a dropped its dead session")
    assert consul.holder == other


def test_a_failed_fence_deposes_the_node_and_its_old_fence_never_writes_again(consul, nodes):
    a = nodes("a").start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    fence = a.ha.fence()
    assert consul.fenced_write(fence)
    other = consul.steal_lock(a)
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
    assert consul.holder == other


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
    eventually(lambda: a.published[-1]["ha"]["leader_node"] == "b", "a learned the new leader")
    assert a.ha.role == PERFSTANDBY


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
    assert consul.services()["strongroom-a"]["Tags"] == ["blue", "sealed"]
    a.unsealed = True
    a.ha.seal_changed(True)
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    # The election loop registers the new role right after taking it.
    eventually(lambda: a.registry.tags() == ["blue", "active", "initialized"], "a registered as active")
    a.ha.step_down()
    assert a.registry.tags() == ["blue", "performance-standby", "initialized"]
    assert consul.services()["strongroom-a"]["Tags"] == ["blue", "performance-standby", "initialized"]
    # sys/ha-status lists the registered instance; no node leads once a's watch saw the release.
    eventually(lambda: a.ha.state()["leader_node"] == "", "a saw the lock free")
    assert [(n["hostname"], n["api_address"], n["active_node"]) for n in a.ha.cluster_nodes()] == [
        ("a", "https://a.example:8200", False)
    ]
    a.ha.stop()
    assert "strongroom-a" not in consul.services()
    assert "strongroom:a:alive" not in consul.checks()


def test_registration_can_be_turned_off(consul, nodes):
    a = nodes("a", register_service=False).start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    assert a.registry.registrations == []
    assert "strongroom-a" not in consul.services()
    assert "strongroom:a:alive" in consul.checks()  # the lock's health check is still needed


def test_an_active_node_that_cannot_reach_consul_for_a_ttl_stops_leading():
    """Its own agent, stopped under it: the heartbeat and the lock both become unreachable."""
    agent = start_agent()
    a = Node(Consul(agent), "a", check_ttl=0.5)
    try:
        a.start()
        eventually(lambda: a.ha.role == ACTIVE, "a is active")
        eventually(lambda: a.registry.passes > 0, "a heartbeat passed")
        agent.stop()
        eventually(lambda: a.registry.failures > 0, "a heartbeat failed")  # no success is in flight now
        a.clock.advance(0.4)  # within the TTL of the last success: still the leader
        failures = a.registry.failures
        eventually(lambda: a.registry.failures >= failures + 2, "more heartbeats failed")
        assert a.ha.role == ACTIVE
        a.clock.advance(0.2)
        eventually(lambda: a.ha.role == PERFSTANDBY, "a stopped claiming to lead")
        assert a.ha.fence() is None
    finally:
        a.ha.stop()
        agent.stop()


def test_stop_releases_the_lock_at_once(consul, nodes):
    a = nodes("a").start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    b = nodes("b").start()
    a.ha.stop()
    holder = consul.holder
    assert holder is None or holder == b.session()
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


@pytest.fixture
def client_agent() -> Iterator[tuple[ConsulAgent, ConsulClientAgent]]:
    """A server and a client agent joined to it, as beside a node in production: the client
    holds the node's check and service and can be restarted with its data dir."""
    server = start_agent()
    client = ConsulClientAgent(join=[server.serf_lan_addr])
    try:
        client.start()
        yield server, client
    finally:
        client.stop()
        server.stop()


def _session_exists(consul: Consul, session: str) -> bool:
    return consul.client.session.info(session)[1] is not None


def test_a_session_given_up_while_the_agent_was_away_is_destroyed_when_it_answers(client_agent):
    """The agent killed and back (same data dir) before Serf noticed: the servers still know
    the active node's session, holding the lock.  The node stepped down after a TTL without
    heartbeats; once the agent answers it destroys that session and leads again with a new one."""
    server, agent = client_agent
    on_server = Consul(server)
    a = Node(Consul(agent), "a", check_ttl=0.5)
    on_server.prefix = a.cluster.prefix
    try:
        a.start()
        eventually(lambda: a.ha.role == ACTIVE, "a is active")
        old = a.session()
        agent.kill()
        agent.proc.wait(10)
        eventually(lambda: a.registry.failures > 0, "a heartbeat failed")
        a.clock.advance(1.0)  # more than a TTL since the last heartbeat that passed
        eventually(lambda: a.ha.role == PERFSTANDBY, "a stopped claiming to lead")
        assert on_server.holder == old  # the servers still give the lock to the old session
        agent.proc = None
        agent.start()
        eventually(lambda: not _session_exists(on_server, old), "the old session destroyed")
        eventually(lambda: a.ha.role == ACTIVE, "a leads again")
        eventually(lambda: on_server.holder == a.session() != old, "a's new session holds the lock")
        eventually(lambda: "strongroom:a:alive" in a.cluster.checks(), "the check is registered")
    finally:
        a.ha.stop()


def test_a_standby_whose_session_was_invalidated_takes_a_new_one(consul, nodes):
    """Consul invalidated a standby's session (its agent restarted with the check critical):
    the standby drops it and can still take over when the active node goes."""
    a = nodes("a").start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    b = nodes("b").start()
    eventually(lambda: b.sessions.created, "b has a session")
    old = b.session()
    consul.invalidate(old)
    eventually(lambda: len(b.sessions.created) >= 2, "b took a new session")
    a.ha.stop()
    eventually(lambda: b.ha.role == ACTIVE, "b took over")
    assert consul.holder == b.session() != old


def test_an_agent_that_forgot_the_check_and_service_gets_them_again(consul, nodes):
    """An agent restarted with a fresh data dir knows neither: the next heartbeat registers
    them again, so the node keeps a check to bind sessions to and stays in the catalog."""
    a = nodes("a").start()
    eventually(lambda: a.ha.role == ACTIVE, "a is active")
    consul.client.agent.service.deregister("strongroom-a")
    consul.client.agent.check.deregister("strongroom:a:alive")
    eventually(lambda: "strongroom:a:alive" in consul.checks(), "the check registered again")
    eventually(lambda: "active" in consul.services().get("strongroom-a", {}).get("Tags", []), "the service again")
    eventually(lambda: a.ha.role == ACTIVE and consul.holder == a.session(), "a leads with a live session")
