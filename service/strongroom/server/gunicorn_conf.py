"""gunicorn settings for a Strongroom node, read from the environment the node core sets."""

import os

import strongroom.api  # noqa: F401  (LIST before Falcon)

bind = os.environ.get("STRONGROOM_BIND", "127.0.0.1:8200").split(",")
workers = int(os.environ.get("STRONGROOM_WORKERS", "1"))
worker_class = "gthread"
threads = int(os.environ.get("STRONGROOM_THREADS", "8"))
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


def post_fork(server, worker):
    """Give the worker its own SO_REUSEPORT listener next to the shared one."""
    import socket

    own = []
    for listener in worker.sockets:
        if listener.family not in (socket.AF_INET, socket.AF_INET6):
            continue
        sock = socket.socket(listener.family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # As gunicorn does for its own listener: without it a body sent after its
        # headers waits ~40 ms for the client's delayed ACK (Nagle).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(listener.getsockname())
        sock.listen(server.cfg.backlog)
        own.append(sock)
    worker.sockets = list(worker.sockets) + own
    # A thread back from a Consul round trip waits for the GIL up to the switch
    # interval (5 ms by default) while another thread computes; requests make
    # several round trips each, so the default multiplies into tens of ms.
    import sys

    sys.setswitchinterval(float(os.environ.get("STRONGROOM_SWITCH_INTERVAL", "0.0005")))


def child_exit(server, worker):
    """Mark a dead worker's metric files so its live gauges disappear."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
