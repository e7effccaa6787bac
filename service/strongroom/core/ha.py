"""High availability: the leader lock, the node's role, and its service registration.

https://developer.hashicorp.com/vault/docs/concepts/ha

Runs in the node core process (one per node).  An unsealed node competes for the
lock key ``core/lock`` with a Consul session bound to ``serfHealth`` and to the
node's own TTL check, which the node core passes every quarter TTL; lock-delay
is 0, so when a node dies, hangs or loses Consul its lock is free within about
one TTL (``storage.check_timeout``, 500 ms by default) and a standby blocked on
the key takes it at once.  Lock-delay 0 is safe because every write of the active
node is fenced with ``check-session`` on the lock (``storage/consul.py``).

Roles: ``sealed`` (never competes), ``active`` (holds the lock), ``standby`` or
``perfstandby`` (every unsealed standby unless ``disable_performance_standby``).
Every change of role is pushed to the workers (``publish``) and written to the
service registration's tags, so at most one instance is tagged ``active`` once
the cluster settles.

The local agent can restart under a running node (upgrade, config change).
While it is away the node cannot reach Consul, and after a TTL the active node
stops claiming the lock; but its session may outlive the outage on the
servers (an agent that did not leave the cluster is not failed by Serf for
seconds, and it restores the TTL check as it was registered, passing), so the
lock would stay held by a session nobody uses.  So a session the node gave up
but could not destroy is kept and destroyed as soon as the agent answers again
(before the node competes); a session Consul invalidated is dropped by every
role, not only the active one; and the first heartbeat that reaches the agent
after a failure re-registers the check and the service, which an agent with a
fresh data dir has forgotten.

A standby does not always wait for the TTL: with ``watch_leader`` (the node
core gives ``server.lifetime.wait_until_gone``) each standby holds an idle
connection to the active node's ``api_addr``, and when that connection ends
and the next one is refused, the active node's processes are gone: the
standby destroys the session that holds the lock (if it still does), and the
election starts at once.  A node killed with -9 on a live host then fails
over in well under a TTL; a host that vanishes (or a partition) still takes
the TTL.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from strongroom.errors import LockLost, StrongroomError
from strongroom.storage import LockSessions, ServiceRegistry
from strongroom.timefmt import rfc3339

log = logging.getLogger("strongroom.ha")

LOCK_KEY = "core/lock"
#: How long a confirmation of the lock by Consul's servers is trusted (the
#: active node's watch answers every second, plus Consul's jitter and latency).
LOCK_LEASE = 2.5

ACTIVE, STANDBY, PERFSTANDBY, SEALED = "active", "standby", "perfstandby", "sealed"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _count_renewal(result: str) -> None:
    """One heartbeat or lock confirmation, ``ok`` or ``failed``.  (Metrics are imported
    when used: the node core loads this module before it points prometheus_client
    at the node's metrics directory.)"""
    from strongroom import metrics

    metrics.inc(metrics.labelled(metrics.ha_lock_renewals_total, result))


def _count_leader_gone() -> None:
    from strongroom import metrics

    metrics.ha_leader_gone_total.inc()


def _count_setup_failed() -> None:
    from strongroom import metrics

    metrics.leadership_setup_failed_total.inc()


class HAManager:
    """Leader election for one node (see module docstring).

    ``sessions`` (``storage.LockSessions``) and ``registry``
    (``storage.ServiceRegistry``) are the storage layer's HA interfaces;
    ``is_unsealed()`` tells whether the node may compete; ``publish(state)``
    pushes the new role to the workers; ``on_role(role)`` lets the owner update
    gauges; ``clock()`` (an aware datetime) is the wall time the node reports as its
    ``active_time``.  Thread-safe; ``start()`` runs the election and heartbeat threads.
    """

    def __init__(
        self,
        *,
        sessions: LockSessions,
        registry: ServiceRegistry,
        is_unsealed: Callable[[], bool],
        node_id: str,
        api_addr: str,
        publish: Callable[[dict], None],
        check_ttl: float = 0.5,
        step_down_holdoff: float = 2.0,
        performance_standby: bool = True,
        service_name: str = "strongroom",
        service_tags: tuple[str, ...] = (),
        register_service: bool = True,
        on_role: Callable[[str], None] | None = None,
        on_lease: Callable[[float], None] | None = None,
        watch_leader: Callable[[str, Callable[[], bool]], bool] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = _utcnow,
    ):
        self._sessions = sessions
        self._registry = registry
        self._is_unsealed = is_unsealed
        self.node_id = node_id
        self.api_addr = api_addr
        self._publish = publish
        self._check_ttl = check_ttl
        self._holdoff = step_down_holdoff
        self._perf = performance_standby
        self._service_name = service_name
        self._service_tags = list(service_tags)
        self._register = register_service
        self._on_role = on_role
        self._on_lease = on_lease
        self._watch_leader = watch_leader
        self._monotonic = monotonic
        self._clock = clock
        self._check_id = f"strongroom:{node_id}:alive"
        self._service_id = f"{service_name}-{node_id}"
        self._lock = threading.RLock()
        self._registration_lock = threading.Lock()
        self._wake = threading.Event()
        # Notified whenever the role or the known leader changes (settle() waits on it).
        self._settled = threading.Condition(threading.Lock())
        self._stopping = False
        self._session: str | None = None
        # Sessions given up while the agent was unreachable: destroyed as soon as it answers.
        self._stale_sessions: list[str] = []
        self._role = SEALED
        self._leader: dict = {}
        # The session holding the lock for ``_leader`` (what a standby's watch may destroy).
        self._leader_session: str | None = None
        self._leader_changed = threading.Event()
        self._active_time = ""
        self._holdoff_until = 0.0
        self._last_heartbeat_ok = monotonic()
        # When the last heartbeat that succeeded was sent, and when Consul's
        # servers last confirmed (as of sending) that our session holds the lock.
        self._heartbeat_sent = 0.0
        self._lock_confirmed = 0.0
        self._initialized = False

    # --- state -------------------------------------------------------------------

    def state(self) -> dict:
        """The HA state pushed to workers."""
        with self._lock:
            return {
                "enabled": True,
                "role": self._role,
                "session": self._session if self._role == ACTIVE else "",
                "node_id": self.node_id,
                "leader_address": self.api_addr if self._role == ACTIVE else self._leader.get("api_addr", ""),
                "leader_node": self.node_id if self._role == ACTIVE else self._leader.get("node_id", ""),
                "active_time": self._active_time if self._role == ACTIVE else self._leader.get("active_time", ""),
            }

    @property
    def role(self) -> str:
        return self._role

    def cluster_nodes(self) -> list[dict]:
        """``sys/ha-status`` nodes: every registered instance of the service."""
        state = self.state()
        scheme = "https" if self.api_addr.startswith("https") else "http"
        nodes = []
        for instance in self._registry.service_instances(self._service_name):
            node_id = instance["Meta"].get("node_id", "")
            active = node_id == state["leader_node"]
            nodes.append(
                {
                    "hostname": node_id,
                    "api_address": f"{scheme}://{instance['Address']}:{instance['Port']}",
                    "cluster_address": "",
                    "active_node": active,
                    "last_echo": None if active else self._now_rfc3339(),
                    "version": "",
                    "upgrade_version": "",
                    "redundancy_zone": "",
                }
            )
        return sorted(nodes, key=lambda n: n["hostname"])

    def settle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until this unsealed node knows where writes go:
        it is active, or a standby that knows the active node (its workers were told,
        the push is acknowledged).  True when settled (or sealed, or stopping).

        ``sys/unseal`` calls it once the node opens: Vault answers the unseal before the
        standby loop has run, and a client's next request (``secrets enable`` in a
        script) then meets "active cluster node not found"; one election round is a
        few milliseconds, so the unseal waits for it instead."""
        deadline = self._monotonic() + timeout
        with self._settled:
            while not self._is_settled():
                remaining = deadline - self._monotonic()
                if remaining <= 0:
                    return False
                self._settled.wait(min(remaining, 0.1))
        return True

    def _is_settled(self) -> bool:
        if self._stopping or self._role == SEALED or self._role == ACTIVE:
            return True
        return bool(self._leader.get("api_addr"))

    def _notify_settled(self) -> None:
        with self._settled:
            self._settled.notify_all()

    def fence(self) -> tuple[str, str] | None:
        """The fence for this node's writes: the lock and our session while active."""
        with self._lock:
            if self._role == ACTIVE and self._session:
                return LOCK_KEY, self._session
            return None

    def _set_role(self, role: str) -> None:
        with self._lock:
            if role == self._role:
                return
            previous, self._role = self._role, role
            if role == ACTIVE:
                self._active_time = self._now_rfc3339()
            elif previous == ACTIVE and self._leader.get("node_id") == self.node_id:
                # Until the lock watch names the next leader, there is none: never ourselves,
                # or our workers would forward writes back to this node.
                self._leader = {}
        log.info("node %s: %s -> %s", self.node_id, previous, role)
        self._leader_changed.set()  # a standby's watch starts (or an active node's stops) at once
        if self._on_role:
            self._on_role(role)
        self._announce()
        self._notify_settled()

    def _announce(self) -> None:
        self._publish({"ha": self.state()})
        self._update_registration()

    def _update_registration(self) -> None:
        if not self._register:
            return
        host, _, port = self.api_addr.split("://", 1)[-1].rpartition(":")
        # Serialised, and the role read under the lock: two threads announcing at once
        # (the election loop taking the lock, a fenced write losing it) could otherwise
        # land their registrations in the wrong order and leave "active" on a standby.
        with self._registration_lock:
            tags = list(self._service_tags)
            tags.append(
                {ACTIVE: "active", STANDBY: "standby", PERFSTANDBY: "performance-standby", SEALED: "sealed"}[self._role]
            )
            if self._initialized:
                tags.append("initialized")
            try:
                self._registry.register_service(
                    self._service_id,
                    self._service_name,
                    host.strip("[]"),
                    int(port or 8200),
                    tags,
                    {"node_id": self.node_id},
                )
            except StrongroomError as exc:
                log.warning("service registration failed: %s", exc)

    # --- lifecycle -----------------------------------------------------------------

    def start(self, initialized: bool) -> None:
        self._initialized = initialized
        self._register_check()
        self._update_registration()
        threading.Thread(target=self._heartbeat_loop, name="ha-heartbeat", daemon=True).start()
        threading.Thread(target=self._election_loop, name="ha-election", daemon=True).start()
        if self._watch_leader is not None:
            threading.Thread(target=self._leader_watch_loop, name="ha-leader-watch", daemon=True).start()

    def stop(self) -> None:
        """SIGTERM: give up the lock at once and leave the catalog (idempotent)."""
        if self._stopping:
            return
        self._stopping = True
        with self._lock:
            # Shutting down, not deposed: the election loop must not report a lost lock.
            was_active = self._role == ACTIVE
            if was_active:
                self._role = PERFSTANDBY if self._perf else STANDBY
        if was_active and self._on_role:
            self._on_role(self._role)  # before the lock goes: draining workers stop trusting caches
        self._release()
        self._wake.set()
        if self._register:
            for call in (
                lambda: self._registry.deregister_service(self._service_id),
                lambda: self._registry.deregister_check(self._check_id),
            ):
                try:
                    call()
                except StrongroomError:
                    pass

    def seal_changed(self, unsealed: bool) -> None:
        """The keyring appeared or went away: compete, or release at once."""
        if unsealed:
            self._initialized = True
            if self._role == SEALED:
                self._set_role(PERFSTANDBY if self._perf else STANDBY)
        else:
            # Workers stop writing first (the push is acknowledged), then the lock goes.
            self._set_role(SEALED)
            self._release()
        self._wake.set()

    def step_down(self) -> None:
        """``sys/step-down``: release the lock and stay out of the election for the holdoff."""
        with self._lock:
            self._holdoff_until = self._monotonic() + self._holdoff
        if self._role == ACTIVE:
            self._set_role(PERFSTANDBY if self._perf else STANDBY)
        self._release()
        self._wake.set()

    def lock_lost(self) -> None:
        """A fenced write failed, or Consul no longer knows our session: we are not
        (or no longer) the active node, and the session is given up."""
        if self._role == ACTIVE:
            log.warning("node %s: lost the lock; stepping down", self.node_id)
            self._set_role(PERFSTANDBY if self._perf else STANDBY)
        self._drop_session()
        self._wake.set()

    # --- internals -------------------------------------------------------------------

    def _register_check(self) -> None:
        self._registry.register_ttl_check(self._check_id, f"Strongroom node {self.node_id} alive", self._check_ttl)

    def _release(self) -> None:
        with self._lock:
            session = self._session
        if session is None:
            return
        try:
            self._sessions.release(LOCK_KEY, session)
        except StrongroomError:
            pass
        self._drop_session()

    def _drop_session(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session:
            try:
                self._sessions.destroy_session(session)
            except StrongroomError:
                # The agent is away: the session (and the lock it may hold) lives on
                # in the servers until it is destroyed (see the module docstring).
                with self._lock:
                    self._stale_sessions.append(session)

    def _destroy_stale_sessions(self) -> None:
        """Destroy the sessions given up while the agent was away; raises
        ``StorageUnavailable`` while it still is (the rest are kept)."""
        while True:
            with self._lock:
                if not self._stale_sessions:
                    return
                session = self._stale_sessions[0]
            self._sessions.destroy_session(session)
            log.info("node %s: destroyed session %s given up while Consul was unreachable", self.node_id, session)
            with self._lock:
                self._stale_sessions.remove(session)

    def _heartbeat_loop(self) -> None:
        interval = self._check_ttl / 4
        failed = False
        while not self._stopping:
            try:
                sent = self._monotonic()
                try:
                    self._registry.pass_check(self._check_id)
                except StrongroomError:
                    # The agent may be back without our check (restarted with a fresh
                    # data dir): registering it again is idempotent and passes it.
                    self._register_check()
                self._last_heartbeat_ok = self._monotonic()
                self._heartbeat_sent = sent
                self._renew_lease()
                _count_renewal("ok")
                if failed:
                    failed = False
                    log.info("node %s: the Consul agent answers again; check and service registered", self.node_id)
                    self._update_registration()
                    self._wake.set()
            except StrongroomError:
                failed = True
                _count_renewal("failed")
                # Consul unreachable: after a TTL our session is gone anyway; stop
                # claiming to be active so workers forward instead of failing.
                if self._role == ACTIVE and self._monotonic() - self._last_heartbeat_ok > self._check_ttl:
                    self.lock_lost()
            time.sleep(interval)

    def _renew_lease(self) -> None:
        """Tell ``on_lease`` until when this node may trust that it still holds
        the lock: a TTL after the last heartbeat sent (Consul invalidates the
        session no earlier) and ``LOCK_LEASE`` after the servers last confirmed
        the lock (a watch answers at least every second while active)."""
        if self._on_lease:
            self._on_lease(min(self._heartbeat_sent + self._check_ttl, self._lock_confirmed + LOCK_LEASE))

    def _now_rfc3339(self) -> str:
        """The wall time as Vault renders every time (Go's RFC3339Nano, UTC)."""
        return rfc3339(self._clock())

    def _lock_value(self) -> bytes:
        holder = {"node_id": self.node_id, "api_addr": self.api_addr, "active_time": self._now_rfc3339()}
        return json.dumps(holder).encode()

    def _may_compete(self) -> bool:
        return not self._stopping and self._is_unsealed() and self._monotonic() >= self._holdoff_until

    def _election_loop(self) -> None:
        index = 0
        while not self._stopping:
            try:
                # Before competing: a stale session of ours may still hold the lock.
                self._destroy_stale_sessions()
                if self._may_compete() and self._role != ACTIVE:
                    self._try_acquire()
                sent = self._monotonic()
                # The active node asks more often: each answer renews its lease.
                index, value, holder = self._sessions.wait_key(
                    LOCK_KEY, index, wait="1s" if self._role == ACTIVE else "2s"
                )
                if self._role == ACTIVE and holder is not None and holder == self._session:
                    self._lock_confirmed = sent
                    self._renew_lease()
                    _count_renewal("ok")
                self._observe_lock(value, holder)
                if holder is None and self._may_compete():
                    continue  # free: compete at once
                if not self._is_unsealed() or self._monotonic() < self._holdoff_until:
                    remaining = max(self._holdoff_until - self._monotonic(), 0.05)
                    self._wake.wait(min(remaining, 0.5))
                    self._wake.clear()
                    index = 0
            except LockLost:
                self.lock_lost()
            except StrongroomError as exc:
                log.warning("HA election: %s", exc)
                time.sleep(0.2)
                index = 0
            except Exception:
                log.exception("HA election loop error")
                time.sleep(0.2)
                index = 0

    def _watched_leader(self) -> tuple[str, str] | None:
        """The active node's address and lock session, while this node is an
        unsealed standby that knows them."""
        with self._lock:
            if self._stopping or self._role not in (STANDBY, PERFSTANDBY):
                return None
            address, session = self._leader.get("api_addr"), self._leader_session
        return (address, session) if address and session else None

    def _still_watching(self, watched: tuple[str, str]) -> bool:
        return self._watched_leader() == watched

    def _leader_watch_loop(self) -> None:
        """Watch the active node's processes (module docstring); free its lock when they are gone."""
        assert self._watch_leader is not None
        while not self._stopping:
            self._leader_changed.clear()
            watched = self._watched_leader()
            if watched is None:
                self._leader_changed.wait(1.0)
                continue
            try:
                gone = self._watch_leader(watched[0], partial(self._still_watching, watched))
                if gone:
                    self._free_lock_of(*watched)
            except Exception:
                log.exception("HA leader watch error")
            if not self._stopping and self._watched_leader() == watched:
                self._leader_changed.wait(1.0)  # no evidence either way: look again later

    def _free_lock_of(self, address: str, session: str) -> None:
        """Destroy ``session`` if it still holds the lock: its node's processes are gone."""
        _, _, holder = self._sessions.wait_key(LOCK_KEY, 0)
        if holder != session:
            return
        log.warning(
            "node %s: the active node at %s is gone (its connection ended and the next was refused); "
            "freeing its lock without waiting for its TTL",
            self.node_id,
            address,
        )
        self._sessions.destroy_session(session)
        _count_leader_gone()

    def _try_acquire(self) -> None:
        with self._lock:
            session = self._session
        if session is None:
            session = self._sessions.create_session(
                f"strongroom-{self.node_id}", ["serfHealth", self._check_id], lock_delay="0s", behavior="release"
            )
            with self._lock:
                self._session = session
        sent = self._monotonic()
        if self._sessions.acquire(LOCK_KEY, self._lock_value(), session):
            self._lock_confirmed = sent
            self._renew_lease()
            if self._is_unsealed() and not self._stopping:
                self._set_role(ACTIVE)
            else:
                # Sealed or stopping since the attempt began: activation abandoned (Vault's leadership_setup_failed).
                _count_setup_failed()
                self._release()

    def _observe_lock(self, value: bytes | None, holder: str | None) -> None:
        with self._lock:
            session = self._session
        if self._role == ACTIVE and (holder is None or holder != session):
            # Our session was invalidated (missed heartbeats, partition): we are deposed.
            _count_renewal("failed")
            self.lock_lost()
            return
        leader = {}
        if holder and value:
            try:
                leader = json.loads(value)
            except ValueError:
                leader = {}
        if self._role != ACTIVE and leader.get("node_id") == self.node_id:
            # A watch answered before our own release (step-down, seal) still names us: there is
            # no leader until the next answer, never this node, or its workers forward to themselves.
            leader = {}
        if leader != self._leader or (leader and holder != self._leader_session):
            with self._lock:
                self._leader = leader
                self._leader_session = holder if leader else None
            self._leader_changed.set()
            if self._role != ACTIVE and not self._stopping:
                self._announce()
            self._notify_settled()
