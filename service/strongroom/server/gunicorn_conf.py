"""gunicorn settings for a Strongroom node, read from the environment the node core sets."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import strongroom.api  # noqa: F401  (LIST before Falcon)
from strongroom.server import balance

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


# One listening socket, shared by the workers; each accepts only while it holds
# no more connections than the least loaded (server/balance.py).  Not
# SO_REUSEPORT: its hash left a worker without any of 16 connections about one
# run in 25 (bench/README.md), and without it the kernel refuses a second node
# on the same port.
reuse_port = False
# Mapped here, in the master, so that every worker forked from it shares it.
connection_table = balance.table_from_environment()


def pre_fork(server: Arbiter, worker: Worker) -> None:
    """Give the worker about to be forked a free slot of the connection table."""
    if connection_table is not None:
        used = {getattr(other, "balance_slot", None) for other in server.WORKERS.values()}
        worker.connection_table = connection_table
        worker.balance_slot = connection_table.free_slot({slot for slot in used if slot is not None})


def child_exit(server: Arbiter, worker: Worker) -> None:
    """Free a dead worker's slot; mark its metric files so its live gauges disappear."""
    slot = getattr(worker, "balance_slot", None)
    if connection_table is not None and slot is not None:
        connection_table.leave(slot)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
