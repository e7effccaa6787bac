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


def child_exit(server, worker):
    """Mark a dead worker's metric files so its live gauges disappear."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
