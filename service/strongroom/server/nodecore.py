"""The node core process: node-wide state, and gunicorn as its child.

It creates the metrics directory (wiped at every start), the 0700 socket
directory, the ``SealManager`` (keys only in this process's memory) and the
``NodeLinkServer``; then it runs gunicorn with the configured workers and
forwards SIGTERM/SIGINT to it.  When gunicorn exits, so does the node core.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from strongroom.config import ServerConfig


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


def run(config: ServerConfig, *, config_path: str = "", dev: bool = False, dev_root_token: str = "") -> int:
    """Run a node until gunicorn exits or a signal stops it; returns the exit code."""
    metrics_dir = tempfile.mkdtemp(prefix="strongroom-metrics-")
    socket_dir = tempfile.mkdtemp(prefix="strongroom-node-")  # mkdtemp makes it 0700
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    env = _gunicorn_env(config, dict(os.environ))
    if dev:
        env["STRONGROOM_DEV"] = "1"
        env["STRONGROOM_DEV_LISTEN"] = config.listeners[0].address
        env["STRONGROOM_DEV_ROOT_TOKEN"] = dev_root_token
    else:
        env["STRONGROOM_CONFIG"] = os.path.abspath(config_path)

    server = None
    seal = None
    if config.storage.type != "inmem":
        server, seal = _start_node_core(config, os.path.join(socket_dir, "node.sock"))
        env["STRONGROOM_NODE_SOCKET"] = server.path

    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:strongroom.server.gunicorn_conf",
                             "strongroom.server.wsgi:app"], env=env, preexec_fn=_die_with_parent)

    def stop(signum, frame):
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
        if seal is not None:
            seal.seal()
        if server is not None:
            server.close()
        shutil.rmtree(socket_dir, ignore_errors=True)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0 if rc in (0, -signal.SIGTERM) else rc


def _start_node_core(config: ServerConfig, socket_path: str):
    from strongroom import metrics
    from strongroom.core.core import utcnow
    from strongroom.core.nodelink import NodeLinkServer, keyring_event, seal_handlers
    from strongroom.core.seal import SealManager
    from strongroom.server.build import make_backend

    backend = make_backend(config)
    holder = {}

    def on_change(keyring):
        metrics.core_unsealed.set(0 if keyring is None else 1)
        metrics.core_active.set(0 if keyring is None else 1)
        holder["server"].publish(keyring_event(keyring))

    seal = SealManager(backend, utcnow, on_change=on_change, cluster_name=config.cluster_name,
                       storage_type=config.storage.type)
    handlers = seal_handlers(seal, lambda keys: holder["server"].publish({"invalidate": keys}))
    server = NodeLinkServer(socket_path, handlers, state=lambda: keyring_event(seal.keyring()))
    holder["server"] = server
    metrics.core_unsealed.set(0)
    server.start()
    return server, seal
