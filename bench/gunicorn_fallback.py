"""gunicorn settings for the trivial app when strongroom.server.gunicorn_conf cannot be imported.

The values copy Strongroom's node settings (worker class, threads, keep-alive),
so the trivial row stays comparable; bench/kv.py notes in its report which one
was used.
"""

import os

bind = os.environ.get("STRONGROOM_BIND", "127.0.0.1:8200").split(",")
workers = int(os.environ.get("STRONGROOM_WORKERS", "1"))
worker_class = "gthread"
threads = int(os.environ.get("STRONGROOM_THREADS", "8"))
keepalive = 30
timeout = 60
graceful_timeout = 10
max_requests = 0
accesslog = None
errorlog = "-"
loglevel = "warning"
