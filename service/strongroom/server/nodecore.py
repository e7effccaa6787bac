"""The node core process: node-wide state, and gunicorn as its child.

It creates the metrics directory (wiped at every start), the 0700 socket
directory, the ``SealManager`` (keys only in this process's memory) and the
``NodeLinkServer``; then it runs gunicorn with the configured workers and
forwards SIGTERM/SIGINT to it.  When gunicorn exits, so does the node core.

With ``seal "transit"`` the node core also builds the transit seal and runs the
auto-unseal loop: while the node is sealed and has never been unsealed since
start, it tries to unseal with the seal every second, saying on stderr why it
cannot (storage not initialised, the unsealer unreachable or refusing) each
time the reason changes.  A restarted node therefore unseals itself with no
operator; after a manual ``sys/seal`` it stays sealed until restarted or
unsealed with recovery keys.  The seal's token never reaches the workers.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING

from strongroom import config as config_mod
from strongroom.config import ServerConfig
from strongroom.core.ha import LOCK_KEY
from strongroom.errors import ReadOnly, StrongroomError
from strongroom.server.lifetime import die_with_parent, wait_until_gone

if TYPE_CHECKING:
    from strongroom.barrier import Barrier
    from strongroom.barrier.keyring import Keyring
    from strongroom.core.seal import SealManager
    from strongroom.core.seal_transit import TokenRenewer, TransitSeal
    from strongroom.storage import Backend
    from strongroom.storage.coherence import CoherenceTable


def _gunicorn_env(config: ServerConfig, env: dict) -> dict:
    listener = config.listeners[0]
    env["STRONGROOM_BIND"] = ",".join(item.address for item in config.listeners)
    env["STRONGROOM_WORKERS"] = str(config.workers)
    env["STRONGROOM_NODE_ID"] = config.node_id
    env["STRONGROOM_LOG_LEVEL"] = {"trace": "debug", "warn": "warning"}.get(config.log_level, config.log_level)
    if not listener.tls_disable:
        env["STRONGROOM_TLS_CERT"] = listener.tls_cert_file
        env["STRONGROOM_TLS_KEY"] = listener.tls_key_file
    return env


def _ensure_free(addresses: Iterable[str]) -> None:
    """Refuse to start on a port already taken, before anything else starts (the
    kernel would refuse gunicorn's listener too, but later and less clearly)."""
    for address in addresses:
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # Like gunicorn: connections of a previous run in TIME_WAIT do not count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, int(port)))
            except OSError as exc:
                raise SystemExit(f"error: cannot listen on {address}: {exc.strerror}") from None


def run(config: ServerConfig, *, dev: bool = False, dev_root_token: str = "") -> int:
    """Run a node until gunicorn exits or a signal stops it; returns the exit code."""
    _ensure_free(listener.address for listener in config.listeners)
    metrics_dir = tempfile.mkdtemp(prefix="strongroom-metrics-")
    socket_dir = tempfile.mkdtemp(prefix="strongroom-node-")  # mkdtemp makes it 0700
    try:
        return _run(config, metrics_dir, socket_dir, dev, dev_root_token)
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _run(config: ServerConfig, metrics_dir: str, socket_dir: str, dev: bool, dev_root_token: str) -> int:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # before anything imports prometheus_client
    auto_seal = _auto_seal(config)
    env = _gunicorn_env(config, dict(os.environ))
    if auto_seal is not None:
        env.pop("VAULT_TOKEN", None)  # the unsealer's token stays in the node core
    if dev:
        env["STRONGROOM_DEV"] = "1"
        env["STRONGROOM_DEV_LISTEN"] = config.listeners[0].address
        env["STRONGROOM_DEV_ROOT_TOKEN"] = dev_root_token
    # Parsed once here (dev mode too: -dev -config adds settings): workers rebuild it from JSON and never
    # load the HCL parser (~4 MiB each).
    # The seal block (its token) stays here too: only the node core talks to the unsealer.
    env["STRONGROOM_CONFIG_JSON"] = config_mod.to_json(dataclasses.replace(config, seal=None))

    node: NodeCore | None = None
    if config.storage.type != "inmem":
        from strongroom.storage.coherence import CoherenceTable

        _wait_for_storage(config)
        table = CoherenceTable.create(os.path.join(socket_dir, "cache.table"))
        try:
            node = NodeCore(config, os.path.join(socket_dir, "node.sock"), table, auto_seal=auto_seal)
            node.start()
        except StrongroomError as exc:  # Consul went away again during start-up
            raise SystemExit(f"error: cannot start the node: {exc}") from None
        env["STRONGROOM_NODE_SOCKET"] = node.server.path
        env["STRONGROOM_CACHE_TABLE"] = table.path

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:strongroom.server.gunicorn_conf",
            "strongroom.server.wsgi:get_app()",
        ],
        env=env,
        preexec_fn=die_with_parent,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        # Release the lock first, so a standby takes over while we drain.
        if node is not None:
            node.release()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        rc = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if node is not None:
            node.close()
    return 0 if rc in (0, -signal.SIGTERM) else rc


def _auto_seal(config: ServerConfig) -> TransitSeal | None:
    """The transit seal of ``seal "transit"`` (environment fallbacks applied), None for Shamir."""
    if config.seal is None:
        return None
    from strongroom.core.seal_transit import transit_seal

    try:
        return transit_seal(config.seal)
    except config_mod.ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None


def _say(message: str) -> None:
    """One line on the node's stderr (its log), as ``_wait_for_storage`` does."""
    print(message, file=sys.stderr, flush=True)


class AutoUnsealLoop:
    """Unseal with the auto seal as soon as possible after start (see the module docstring).

    Runs until the node is unsealed once, or ``stop()``.  ``attempt`` is
    ``SealManager.auto_unseal``; ``say`` gets one line per change of reason."""

    def __init__(
        self, attempt: Callable[[], bool], address: str, say: Callable[[str], None] = _say, interval: float = 1.0
    ) -> None:
        self._attempt = attempt
        self._address = address
        self._say = say
        self._interval = interval
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self.run, name="auto-unseal", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        said = ""
        while not self._stop.is_set():
            try:
                if self._attempt():
                    self._say(f"auto-unseal: unsealed with the transit seal at {self._address}")
                    return
                reason = "storage is not initialised yet (sys/init with recovery_shares)"
            except StrongroomError as exc:
                reason = str(exc)
            except Exception as exc:  # keep trying whatever went wrong; the type says enough
                reason = f"unexpected {type(exc).__name__}"
            if reason != said:
                said = reason
                self._say(f"auto-unseal: node sealed, retrying every {self._interval:g}s: {reason}")
            self._stop.wait(self._interval)


def _wait_for_storage(config: ServerConfig) -> None:
    """Consul may come up after the node (boot order, a restart): wait for it,
    saying why on stderr each time the reason changes, instead of dying."""
    from strongroom.server.build import consul_backend, wrap_consul

    def stop_waiting(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop_waiting)
    consul = consul_backend(config)
    backend = wrap_consul(config, consul)
    said = ""
    while True:
        try:
            backend.get(LOCK_KEY)
            consul.close()
            return
        except StrongroomError as exc:
            if str(exc) != said:
                said = str(exc)
                print(f"waiting for storage: {said}", file=sys.stderr, flush=True)
            time.sleep(1)


def _private_barrier(backend: Backend, seal: SealManager) -> Barrier | None:
    """A barrier over ``backend`` holding the node's keyring (None while sealed): what
    the active node's own set-up writes go through, outside any worker's core."""
    from strongroom.barrier import Barrier

    keyring = seal.keyring()
    if keyring is None:
        return None
    barrier = Barrier(backend)
    barrier.set_keyring(keyring)
    return barrier


def _sync_declared_audit(
    config: ServerConfig, backend: Backend, seal: SealManager, announce: Callable[[], None]
) -> None:
    """The active node writes the configuration's audit devices to the audit
    table (``AuditBroker.sync_declared``) through a private barrier holding the
    node's keyring, and tells its workers; the other nodes' table watches
    tell theirs.  A failure is logged: the table keeps what it had."""
    from strongroom.barrier import BarrierView
    from strongroom.core.audit import AuditBroker
    from strongroom.core.core import utcnow

    barrier = _private_barrier(backend, seal)
    if barrier is None:
        return
    broker = AuditBroker(BarrierView(barrier, "sys/audit/"), utcnow, file_directory=config.audit_file_directory)
    try:
        if broker.sync_declared(config.audit):
            announce()
    except Exception:  # never in the way of the workers hearing that the node is active
        logging.getLogger("strongroom.audit").exception("declared audit devices not written")
        from strongroom import metrics

        metrics.leadership_setup_failed_total.inc()


def _store_default_tables(backend: Backend, seal: SealManager) -> None:
    """The active node writes the mount and auth tables and the ``default``
    policy when storage has none yet (a new cluster; Vault persists them at
    setup), through a private barrier holding the node's keyring.  An absent
    table key is a prefix with no key, whose Consul watch every token written
    under ``sys/`` would wake (core/invalidation.py).  A failure is logged: the
    defaults still apply in memory, the watches are only busier."""
    from strongroom.barrier import BarrierView
    from strongroom.core.mounts import AUTH_PATH, MOUNTS_PATH, MountTable, default_auth_mounts
    from strongroom.core.policy_store import PolicyStore

    barrier = _private_barrier(backend, seal)
    if barrier is None:
        return
    try:
        MountTable(barrier, MOUNTS_PATH, "logical/").store_defaults()
        MountTable(barrier, AUTH_PATH, "auth/", defaults=default_auth_mounts).store_defaults()
        PolicyStore(BarrierView(barrier, "sys/policy/")).store_default()
    except Exception:
        logging.getLogger("strongroom.nodecore").exception(
            "default mount and auth tables and default policy not written"
        )


class NodeCore:
    """The node-wide state of one node, and how its parts are wired.

    ``backend``: the storage, fenced with the HA manager's session;
    ``seal``: the ``SealManager`` (keys only in this process's memory);
    ``registry``: the node's liveness check and service registration;
    ``ha``: the ``HAManager`` (the lock and the node's role);
    ``server``: the ``NodeLinkServer`` the workers call and subscribe to;
    ``watcher``: the ``TableWatcher`` telling the workers of other nodes' changes.

    The parts form a cycle: the backend fences with the HA manager's session
    and reports a lost lock to it; the seal and the HA manager announce through
    the server; the server serves the seal and the HA manager.  It is broken
    here, explicitly: the parts are built in that order, and every arrow
    pointing back (``_fence``, ``_lock_lost``, ``_publish``, ``_keyring_changed``,
    ``_role_changed``) is a method of this object, which no part calls before
    ``start()``.

    ``cache_table`` is the workers' ``CoherenceTable``: the node core's own
    writes (root token, keyring) are announced in it, and it opens the
    workers' caches only while this node is active.
    """

    def __init__(
        self, config: ServerConfig, socket_path: str, cache_table: CoherenceTable, auto_seal: TransitSeal | None = None
    ):
        # Imported here, not at the top: prometheus_client (behind metrics and the
        # instrumented backend) must load after run() set PROMETHEUS_MULTIPROC_DIR.
        from strongroom.core.core import utcnow
        from strongroom.core.ha import HAManager
        from strongroom.core.invalidation import TableWatcher
        from strongroom.core.seal import SealManager
        from strongroom.server.build import consul_backend, wrap_consul
        from strongroom.server.nodelink import NodeLinkServer, node_core_handlers
        from strongroom.storage.consul_registry import ConsulRegistry
        from strongroom.storage.consul_session import ConsulSessions

        self.config = config
        self.cache_table = cache_table
        self._was_active = False
        self._role_lock = threading.Lock()
        self._active_since = 0.0
        self._unsealed = False
        consul = consul_backend(config, fence=self._fence, on_lock_lost=self._lock_lost)
        self.backend = wrap_consul(config, consul, cache_table=cache_table, cache_size=0)
        self.seal = SealManager(
            self.backend,
            utcnow,
            on_change=self._keyring_changed,
            cluster_name=config.cluster_name,
            storage_type=config.storage.type,
            auto_seal=auto_seal,
        )
        self.auto_seal = auto_seal
        self.auto_unseal: AutoUnsealLoop | None = None
        self.renewer: TokenRenewer | None = None
        self.registry = ConsulRegistry.for_backend(consul)
        self.ha = HAManager(
            sessions=ConsulSessions.for_backend(consul),
            registry=self.registry,
            is_unsealed=lambda: self.seal.keyring() is not None,
            node_id=config.node_id,
            api_addr=config.api_addr,
            publish=self._publish,
            check_ttl=config.storage.check_timeout_seconds,
            step_down_holdoff=config_mod.parse_duration(config.step_down_holdoff),
            performance_standby=not config.disable_performance_standby,
            service_name=config.storage.service,
            service_tags=tuple(config.storage.service_tag_list),
            register_service=not config.storage.disable_registration,
            on_role=self._role_changed,
            on_lease=cache_table.set_lease,
            watch_leader=wait_until_gone,
        )
        self.server = NodeLinkServer(
            socket_path, node_core_handlers(self.seal, self.ha, self._publish), state=self._link_state
        )
        self.watcher = TableWatcher(
            self.registry, lambda names: self._publish({"invalidate": names}), self.seal.reload_keyring
        )
        # The change log (storage/changes.py): the active node prunes it; a
        # performance standby follows it into the workers' cache table.
        from strongroom.storage.changes import ChangeFollower, ChangePruner
        from strongroom.storage.coherence import caching_supported
        from strongroom.storage.consul_changes import ConsulChangeFeed

        feed = ConsulChangeFeed.for_backend(consul)
        self.pruner = ChangePruner(feed, self.backend, lambda: self.ha.role == "active")
        caching = caching_supported() and not config.disable_cache and config.cache_size > 0
        self.follower = ChangeFollower(feed, cache_table) if caching else None

    def start(self) -> None:
        """Open the socket to the workers, then enter the election and watch the tables."""
        from strongroom import metrics
        from strongroom.core.core import utcnow
        from strongroom.core.ha import ACTIVE
        from strongroom.core.rotation import AutoRotation
        from strongroom.core.seal import VERSION
        from strongroom.engines.transit.autorotate import TransitAutoRotation
        from strongroom.server.usage import UsageGauges

        metrics.core_unsealed.set(0)
        metrics.set_build_info(VERSION)
        metrics.initialize_labels()
        metrics.sample_process_forever("core")
        initialized = self.seal.seal_config() is not None
        metrics.core_initialized.set(1 if initialized else 0)
        self.server.start()
        self.ha.start(initialized=initialized)
        self.watcher.start()
        self.pruner.start()
        UsageGauges(
            self.config.telemetry,
            self.backend,
            self.seal.keyring,
            lambda: self.ha.role,
            lambda: self.seal.seal_config() is not None,
        ).start()
        # sys/rotate/config: the active node rotates the barrier key once its term is too old.
        AutoRotation(
            store=self.seal.barrier,
            keyring=self.seal.keyring,
            is_active=lambda: self.ha.role == ACTIVE,
            rotate=self.seal.rotate,
            clock=utcnow,
        ).start()
        # Transit keys' auto_rotate_period: the active node rotates the keys that are due.
        TransitAutoRotation(self.seal.barrier, lambda: self.ha.role == ACTIVE, utcnow).start()
        if self.auto_seal is not None:
            from strongroom.core.seal_transit import TokenRenewer

            self.auto_unseal = AutoUnsealLoop(self.seal.auto_unseal, self.auto_seal.address)
            self.auto_unseal.start()
            if not self.auto_seal.settings.disable_renewal:
                self.renewer = TokenRenewer(self.auto_seal.client, _say)
                self.renewer.start()

    def release(self) -> None:
        """SIGTERM: give up the lock at once, so a standby takes over while gunicorn drains (idempotent)."""
        self.ha.stop()

    def close(self) -> None:
        """Leave the election, forget the keys, close the workers' socket."""
        if self.auto_unseal is not None:
            self.auto_unseal.stop()
        if self.renewer is not None:
            self.renewer.stop()
        self.pruner.stop()
        if self.follower is not None:
            self.follower.stop()
        self.ha.stop()
        self.seal.seal()
        self.server.close()
        if self.auto_seal is not None:
            self.auto_seal.close()

    # --- the arrows pointing back (see the class docstring) ---------------------------

    def _fence(self) -> tuple[str, str] | None:
        """The node core's own writes (rotate, declared audit devices) are fenced like the
        workers': an unsealed node that does not hold the lock never writes, even when it
        lost the lock between its check and its write.  Unfenced only while sealed, which
        is how sys/init writes the first keys (no node can hold the lock yet)."""
        fence = self.ha.fence()
        if fence is None and self.seal.keyring() is not None:
            raise ReadOnly()
        return fence

    def _lock_lost(self) -> None:
        self.ha.lock_lost()

    def _publish(self, event: dict) -> None:
        self.server.publish(event)

    def _link_state(self) -> dict:
        from strongroom.server.nodelink import keyring_event

        return {**keyring_event(self.seal.keyring()), "ha": self.ha.state()}

    def _keyring_changed(self, keyring: Keyring | None) -> None:
        from strongroom import metrics
        from strongroom.server.nodelink import keyring_event

        metrics.core_unsealed.set(0 if keyring is None else 1)
        if (keyring is not None) != self._unsealed:  # a rotation keeps the node unsealed: no event
            self._unsealed = keyring is not None
            metrics.inc(metrics.labelled(metrics.seal_events_total, "unseal" if self._unsealed else "seal"))
        if keyring is not None:
            metrics.core_initialized.set(1)
        self._publish(keyring_event(keyring))
        self.ha.seal_changed(keyring is not None)

    def _role_changed(self, role: str) -> None:
        from strongroom import metrics
        from strongroom.core.ha import ACTIVE, PERFSTANDBY

        active = role == ACTIVE
        with self._role_lock:  # two role changes in a row never interleave their cache epochs
            if self.follower is not None and role != PERFSTANDBY:
                self.follower.stop()  # before a new active epoch: a stopped follower never touches the table
            self.cache_table.set_active(active)
            if self.follower is not None and role == PERFSTANDBY and self.ha.role == PERFSTANDBY:
                self.follower.start()  # a new following epoch once the log's first answer arrives
        metrics.core_active.set(1 if active else 0)
        metrics.ha_lock_held.set(1 if active else 0)
        metrics.core_performance_standby.set(1 if role == PERFSTANDBY else 0)
        if active:
            # Before the workers hear they are active: the configured audit devices are in place first.
            _sync_declared_audit(self.config, self.backend, self.seal, lambda: self._publish({"invalidate": ["audit"]}))
            _store_default_tables(self.backend, self.seal)
            if not self._was_active:
                self._active_since = time.time()
                metrics.leadership_acquired_total.inc()
        elif self._was_active:
            metrics.leadership_lost_total.inc()
            metrics.leadership_held_seconds_total.inc(max(time.time() - self._active_since, 0.0))
            self._active_since = 0.0
        metrics.core_active_since.set(self._active_since)
        self._was_active = active
