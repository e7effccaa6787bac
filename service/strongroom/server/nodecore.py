"""The node core process: node-wide state, and gunicorn as its child.

It creates the metrics directory (wiped at every start), the 0700 socket
directory, the ``SealManager`` (keys only in this process's memory) and the
``NodeLinkServer``; then it runs gunicorn with the configured workers and
forwards SIGTERM/SIGINT to it.  When gunicorn exits, so does the node core.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from strongroom import config as config_mod
from strongroom.config import ServerConfig
from strongroom.errors import StrongroomError


def _gunicorn_env(config: ServerConfig, env: dict) -> dict:
    listener = config.listeners[0]
    env["STRONGROOM_BIND"] = ",".join(l.address for l in config.listeners)
    env["STRONGROOM_WORKERS"] = str(config.workers)
    env["STRONGROOM_NODE_ID"] = config.node_id
    env["STRONGROOM_LOG_LEVEL"] = {"trace": "debug", "warn": "warning"}.get(config.log_level, config.log_level)
    if not listener.tls_disable:
        env["STRONGROOM_TLS_CERT"] = listener.tls_cert_file
        env["STRONGROOM_TLS_KEY"] = listener.tls_key_file
    return env


def _die_with_parent() -> None:
    """gunicorn must not outlive its node core (a node killed with -9 is gone,
    not half-alive); its workers notice their parent died and exit too."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _ensure_free(addresses) -> None:
    """Workers listen with SO_REUSEPORT, which would let a second node silently
    share a port with a running one: refuse to start on a port already taken."""
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
    env = _gunicorn_env(config, dict(os.environ))
    if dev:
        env["STRONGROOM_DEV"] = "1"
        env["STRONGROOM_DEV_LISTEN"] = config.listeners[0].address
        env["STRONGROOM_DEV_ROOT_TOKEN"] = dev_root_token
    # Parsed once here (dev mode too: -dev -config adds settings): workers rebuild it from JSON and never
    # load the HCL parser (~4 MiB each).
    env["STRONGROOM_CONFIG_JSON"] = config_mod.to_json(config)

    server = seal = ha = None
    if config.storage.type != "inmem":
        from strongroom.storage.coherence import CoherenceTable

        _wait_for_storage(config)
        table = CoherenceTable.create(os.path.join(socket_dir, "cache.table"))
        try:
            server, seal, ha = _start_node_core(config, os.path.join(socket_dir, "node.sock"), table)
        except StrongroomError as exc:  # Consul went away again during start-up
            raise SystemExit(f"error: cannot start the node: {exc}") from None
        env["STRONGROOM_NODE_SOCKET"] = server.path
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
        preexec_fn=_die_with_parent,
    )

    def stop(signum, frame):
        # Release the lock first, so a standby takes over while we drain.
        if ha is not None:
            ha.stop()
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
        if ha is not None:
            ha.stop()
        if seal is not None:
            seal.seal()
        if server is not None:
            server.close()
    return 0 if rc in (0, -signal.SIGTERM) else rc


def _wait_for_storage(config: ServerConfig) -> None:
    """Consul may come up after the node (boot order, a restart): wait for it,
    saying why on stderr each time the reason changes, instead of dying."""
    from strongroom.server.build import make_backend

    def stop_waiting(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop_waiting)
    backend = make_backend(config)
    said = ""
    while True:
        try:
            backend.get("core/lock")
            backend.close()
            return
        except StrongroomError as exc:
            if str(exc) != said:
                said = str(exc)
                print(f"waiting for storage: {said}", file=sys.stderr, flush=True)
            time.sleep(1)


def _sync_declared_audit(config: ServerConfig, backend, seal, announce) -> None:
    """The active node writes the configuration's audit devices to the audit
    table (``AuditBroker.sync_declared``) through a private barrier holding the
    node's keyring, and tells its workers; the other nodes' table watches
    tell theirs.  A failure is logged: the table keeps what it had."""
    from strongroom.barrier import Barrier, BarrierView
    from strongroom.core.audit import AuditBroker
    from strongroom.core.core import utcnow

    keyring = seal.keyring()
    if keyring is None:
        return
    barrier = Barrier(backend)
    barrier.set_keyring(keyring)
    broker = AuditBroker(BarrierView(barrier, "sys/audit/"), utcnow, file_directory=config.audit_file_directory)
    try:
        if broker.sync_declared(config.audit):
            announce()
    except Exception:  # never in the way of the workers hearing that the node is active
        logging.getLogger("strongroom.audit").exception("declared audit devices not written")


def _start_node_core(config: ServerConfig, socket_path: str, cache_table):
    """The node-wide state: seal, HA election, table watches, and the socket workers use.

    ``cache_table`` is the workers' ``CoherenceTable``: the node core's own
    writes (root token, keyring) are announced in it, and it opens the
    workers' caches only while this node is active."""
    from strongroom import metrics
    from strongroom.core.core import utcnow
    from strongroom.core.ha import ACTIVE, PERFSTANDBY, HAManager
    from strongroom.core.invalidation import TableWatcher
    from strongroom.core.seal import SealManager
    from strongroom.server.build import make_backend, seconds
    from strongroom.server.nodelink import NodeLinkServer, keyring_event, node_core_handlers
    from strongroom.storage.consul_registry import ConsulRegistry
    from strongroom.storage.consul_session import ConsulSessions

    parts: dict = {}
    backend = make_backend(
        config,
        fence=lambda: parts["ha"].fence(),
        on_lock_lost=lambda: parts["ha"].lock_lost(),
        cache_table=cache_table,
        cache_size=0,
    )

    def on_change(keyring):
        metrics.core_unsealed.set(0 if keyring is None else 1)
        parts["server"].publish(keyring_event(keyring))
        parts["ha"].seal_changed(keyring is not None)

    def on_role(role):
        active = role == ACTIVE
        cache_table.set_active(active)
        metrics.core_active.set(1 if active else 0)
        metrics.ha_lock_held.set(1 if active else 0)
        metrics.core_performance_standby.set(1 if role == PERFSTANDBY else 0)
        if active:
            # Before the workers hear they are active: the configured audit devices are in place first.
            _sync_declared_audit(config, backend, seal, lambda: parts["server"].publish({"invalidate": ["audit"]}))
            metrics.leadership_acquired_total.inc()
        elif parts.get("was_active"):
            metrics.leadership_lost_total.inc()
        parts["was_active"] = active

    seal = SealManager(
        backend, utcnow, on_change=on_change, cluster_name=config.cluster_name, storage_type=config.storage.type
    )
    registry = ConsulRegistry.for_backend(backend)
    ha = HAManager(
        sessions=ConsulSessions.for_backend(backend),
        registry=registry,
        is_unsealed=lambda: seal.keyring() is not None,
        node_id=config.node_id,
        api_addr=config.api_addr,
        publish=lambda event: parts["server"].publish(event),
        check_ttl=config.storage.check_timeout_seconds,
        step_down_holdoff=seconds(config.step_down_holdoff),
        performance_standby=not config.disable_performance_standby,
        service_name=config.storage.service,
        service_tags=tuple(config.storage.service_tag_list),
        register_service=not config.storage.disable_registration,
        on_role=on_role,
        on_lease=cache_table.set_lease,
    )
    parts["ha"] = ha
    server = NodeLinkServer(
        socket_path,
        node_core_handlers(seal, ha, parts),
        state=lambda: {**keyring_event(seal.keyring()), "ha": ha.state()},
    )
    parts["server"] = server
    metrics.core_unsealed.set(0)
    server.start()
    watcher = TableWatcher(registry, lambda names: server.publish({"invalidate": names}), seal.reload_keyring)
    ha.start(initialized=seal.seal_config() is not None)
    watcher.start()
    parts["watcher"] = watcher
    return server, seal, ha
