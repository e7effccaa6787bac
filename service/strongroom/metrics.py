"""Prometheus metrics, named after Vault's with a ``strongroom_`` prefix.

In a multi-process node ``PROMETHEUS_MULTIPROC_DIR`` is set by the server before
anything imports ``prometheus_client`` (DESIGN.md, "Pitfalls"), and ``render()``
aggregates every worker's files.  Labels carry route templates (mount points,
``sys/<endpoint>``), never raw paths.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

PREFIX = "strongroom_"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

requests_total = Counter(PREFIX + "http_requests_total", "HTTP requests handled",
                         ["route", "method", "status"])
request_seconds = Histogram(PREFIX + "http_request_duration_seconds", "HTTP request latency",
                            ["route", "method"], buckets=LATENCY_BUCKETS)
storage_seconds = Histogram(PREFIX + "storage_operation_duration_seconds", "Storage backend operation latency",
                            ["backend", "operation"], buckets=LATENCY_BUCKETS)
barrier_seconds = Histogram(PREFIX + "barrier_operation_duration_seconds", "Barrier operation latency",
                            ["operation"], buckets=LATENCY_BUCKETS)
storage_errors_total = Counter(PREFIX + "storage_errors_total", "Storage operations that failed",
                               ["backend", "error"])
forwarded_total = Counter(PREFIX + "ha_forwarded_requests_total", "Requests forwarded to the active node",
                          ["reason"])
leadership_acquired_total = Counter(PREFIX + "core_leadership_acquired_total", "Times this node became active")
leadership_lost_total = Counter(PREFIX + "core_leadership_lost_total", "Times this node stopped being active")
cache_total = Counter(PREFIX + "cache_requests_total", "Cache lookups", ["cache", "result"])
core_unsealed = Gauge(PREFIX + "core_unsealed", "1 when the node is unsealed", multiprocess_mode="max")
core_active = Gauge(PREFIX + "core_active", "1 when the node is the active node", multiprocess_mode="max")
core_performance_standby = Gauge(PREFIX + "core_performance_standby", "1 when the node is a performance standby",
                                 multiprocess_mode="max")
ha_lock_held = Gauge(PREFIX + "ha_lock_held", "1 while this node holds the HA lock", multiprocess_mode="max")


_children: dict = {}


def labelled(metric, *labels):
    """``metric.labels(*labels)``, remembered: prometheus_client's own lookup
    takes a lock and validates the labels on every call, on every request."""
    key = (id(metric), labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


@contextmanager
def timed(histogram, *labels):
    """Observe the duration of the block in ``histogram`` with ``labels``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        labelled(histogram, *labels).observe(time.perf_counter() - start)


def render() -> bytes:
    """Prometheus text exposition, aggregated over all workers when multi-process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)
