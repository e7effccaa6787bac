"""gunicorn settings for a Strongroom node, read from the environment the node core sets."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import strongroom.api  # noqa: F401  (LIST before Falcon)

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

bind = os.environ.get("STRONGROOM_BIND", "127.0.0.1:8200").split(",")
workers = int(os.environ.get("STRONGROOM_WORKERS", "1"))
# gevent: each connection is a greenlet, switching only where it waits on a
# socket (Consul, the node core, a forward).  gthread's threads handed the GIL
# around every Consul round trip (measured here: 699 -> 416 us of node CPU per
# KV read; bench/README.md).  The worker monkey-patches the standard library
# after the fork, before the app loads; strongroom.server.worker adds fair turns
# and one send per response.
worker_class = "strongroom.server.worker.FairGeventWorker"
worker_connections = 1000
# How long a kept-alive connection may stay idle between requests.  A request's
# own headers and body have the listener's http_read_header_timeout and
# http_read_timeout, counted from its first byte (server/worker.py).
keepalive = 30
timeout = 60
graceful_timeout = 10
# Recycled workers leave metric files behind; keep recycling off (DESIGN.md).
max_requests = 0
accesslog = None
errorlog = "-"
loglevel = os.environ.get("STRONGROOM_LOG_LEVEL", "warning")
proc_name = "strongroom-" + os.environ.get("STRONGROOM_NODE_ID", "node")
if os.environ.get("STRONGROOM_TLS_CERT"):
    certfile = os.environ["STRONGROOM_TLS_CERT"]
    keyfile = os.environ["STRONGROOM_TLS_KEY"]


# Each worker also listens on a socket of its own (SO_REUSEPORT), so the kernel
# spreads new connections over the workers.  With only the shared socket, the
# first worker to wake takes a burst of keep-alive connections (HAProxy's, wrk's)
# and keeps them: one process, one core, while the others idle.
reuse_port = True


def post_fork(server: Arbiter, worker: Worker) -> None:
    """Give the worker its own SO_REUSEPORT listener next to the shared one."""
    import socket

    from gunicorn.sock import TCP6Socket, TCPSocket

    own = []
    for listener in worker.sockets:
        if listener.family not in (socket.AF_INET, socket.AF_INET6):
            continue
        sock = socket.socket(listener.family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(listener.getsockname())
        # gunicorn's own socket type (the gevent worker re-wraps it by fd) also
        # sets TCP_NODELAY, as on gunicorn's listener: without it a body sent
        # after its headers waits ~40 ms for the client's delayed ACK (Nagle).
        kind = TCP6Socket if listener.family == socket.AF_INET6 else TCPSocket
        own.append(kind(sock.getsockname(), server.cfg, server.log, fd=sock.detach()))
    worker.sockets = list(worker.sockets) + own
    # The gevent worker wraps each fd in a new socket object; the originals
    # must stay referenced, or collecting them would close the fds.
    worker.strongroom_listeners = own


def child_exit(server: Arbiter, worker: Worker) -> None:
    """Mark a dead worker's metric files so its live gauges disappear."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
