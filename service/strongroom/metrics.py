"""Prometheus metrics, named after Vault's with a ``strongroom_`` prefix.

In a multi-process node ``PROMETHEUS_MULTIPROC_DIR`` is set by the server before
anything imports ``prometheus_client`` (DESIGN.md, "Pitfalls"), and ``render()``
aggregates every worker's files.  Every label value comes from a bounded set,
whatever clients send: routes are mount points and known ``sys/<endpoint>``
names (never raw paths; ``api/app.py``, ``route_label``), methods and status
codes are mapped by ``method_label`` and ``status_label``.

Request-path updates go through ``inc`` and ``observe``.  A gunicorn worker
calls ``defer_updates``: from then on they are tallied in memory and written to
its metric files once per ``FLUSH_SECONDS`` (and before this worker renders
``sys/metrics``, and when it exits).  A multi-process value costs a lock, a pid
check and a write to a shared file each time; a KV read made about ten of them.
Other workers' figures in ``sys/metrics`` can therefore lag by up to
``FLUSH_SECONDS``.  Without ``defer_updates`` (the node core, tests) every
update is written at once.
"""

from __future__ import annotations

import bisect
import http
import os
import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

PREFIX = "strongroom_"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

requests_total = Counter(PREFIX + "http_requests_total", "HTTP requests handled", ["route", "method", "status"])
request_seconds = Histogram(
    PREFIX + "http_request_duration_seconds", "HTTP request latency", ["route", "method"], buckets=LATENCY_BUCKETS
)
storage_seconds = Histogram(
    PREFIX + "storage_operation_duration_seconds",
    "Storage backend operation latency",
    ["backend", "operation"],
    buckets=LATENCY_BUCKETS,
)
barrier_seconds = Histogram(
    PREFIX + "barrier_operation_duration_seconds", "Barrier operation latency", ["operation"], buckets=LATENCY_BUCKETS
)
storage_errors_total = Counter(PREFIX + "storage_errors_total", "Storage operations that failed", ["backend", "error"])
forwarded_total = Counter(PREFIX + "ha_forwarded_requests_total", "Requests forwarded to the active node", ["reason"])
leadership_acquired_total = Counter(PREFIX + "core_leadership_acquired_total", "Times this node became active")
leadership_lost_total = Counter(PREFIX + "core_leadership_lost_total", "Times this node stopped being active")
cache_total = Counter(PREFIX + "cache_requests_total", "Cache lookups", ["cache", "result"])
core_unsealed = Gauge(PREFIX + "core_unsealed", "1 when the node is unsealed", multiprocess_mode="max")
core_active = Gauge(PREFIX + "core_active", "1 when the node is the active node", multiprocess_mode="max")
core_performance_standby = Gauge(
    PREFIX + "core_performance_standby", "1 when the node is a performance standby", multiprocess_mode="max"
)
ha_lock_held = Gauge(PREFIX + "ha_lock_held", "1 while this node holds the HA lock", multiprocess_mode="max")


#: HTTP methods with a label of their own (Vault's LIST included); every other
#: method name a client sends is counted as ``OTHER_METHOD``.
KNOWN_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "LIST", "OPTIONS"})
OTHER_METHOD = "OTHER"
#: Status codes with a label of their own: the registered ones and Vault's
#: 472 and 473; any other code (``sys/health?activecode=...`` lets a client pick
#: one) is counted by its class, ``"2xx"`` .. ``"5xx"``, or ``"other"``.
KNOWN_STATUSES = frozenset(status.value for status in http.HTTPStatus) | {472, 473}


def method_label(method: str) -> str:
    """The ``method`` label of a request: one of ``KNOWN_METHODS`` or ``OTHER_METHOD``.

    Labels must come from a fixed set: each new value is a new series in every
    worker's metric files and in Prometheus, and request labels are chosen
    by whoever sends the request, token or not."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


def status_label(code: int) -> str:
    """The ``status`` label of a response code (a fixed set, see ``KNOWN_STATUSES``)."""
    if code in KNOWN_STATUSES:
        return str(code)
    return f"{code // 100}xx" if 100 <= code < 600 else "other"


_children: dict = {}


def labelled(metric: Any, *labels: object) -> Any:
    """``metric.labels(*labels)``, remembered: prometheus_client's own lookup
    takes a lock and validates the labels on every call, on every request."""
    key = (id(metric), labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


FLUSH_SECONDS = 1.0


class Tally:
    """Metric updates summed in memory and written to their values by ``flush``.

    Made for a gevent worker, where greenlets switch only where they wait:
    ``add`` and ``flush`` run whole, so they take no lock (with preemptive
    threads two ``add`` calls could lose one).  Updates are summed as they
    come (a counter's amount, a histogram's sum and bucket counts), so a flush
    writes one value per counter and bucket however many requests there were,
    and never holds up the worker for long."""

    def __init__(self) -> None:
        self._counts: dict = {}
        self._histograms: dict = {}

    def __len__(self) -> int:
        """Metric children with updates waiting."""
        return len(self._counts) + len(self._histograms)

    def add(self, child: Any, amount: float) -> None:
        """``child.inc(amount)`` for a counter, ``child.observe(amount)`` for a histogram, later."""
        if isinstance(child, Histogram):
            tally = self._histograms.get(child)
            if tally is None:
                tally = self._histograms[child] = [0.0, [0] * len(child._upper_bounds)]
            tally[0] += amount
            tally[1][bisect.bisect_left(child._upper_bounds, amount)] += 1
        else:
            self._counts[child] = self._counts.get(child, 0.0) + amount

    def flush(self) -> None:
        """Write what was added so far: one update per counter and per histogram bucket."""
        counts, self._counts = self._counts, {}
        histograms, self._histograms = self._histograms, {}
        for child, amount in counts.items():
            child.inc(amount)
        # Histogram.observe has no batch form: add to its sum and buckets as
        # observe does (the last bound is +Inf, so every value has a bucket).
        for child, (total, buckets) in histograms.items():
            child._sum.inc(total)
            for bucket, number in zip(child._buckets, buckets, strict=True):
                if number:
                    bucket.inc(number)


#: This process's tally once ``defer_updates`` was called; None: updates are written at once.
_tally: Tally | None = None


def inc(child: Any, amount: float = 1.0) -> None:
    """``child.inc(amount)`` (a counter from ``labelled``), deferred when enabled."""
    tally = _tally
    if tally is None:
        child.inc(amount)
    else:
        tally.add(child, amount)


def observe(child: Any, value: float) -> None:
    """``child.observe(value)`` (a histogram from ``labelled``), deferred when enabled."""
    tally = _tally
    if tally is None:
        child.observe(value)
    else:
        tally.add(child, value)


def flush() -> None:
    """Write this process's deferred updates now."""
    if _tally is not None:
        _tally.flush()


def defer_updates(interval: float = FLUSH_SECONDS) -> None:
    """From now on tally ``inc``/``observe`` in memory, flushed every ``interval``
    seconds by a daemon thread (a greenlet in a gevent worker)."""
    global _tally
    if _tally is not None:
        return
    tally = _tally = Tally()

    def flush_forever() -> None:
        while True:
            time.sleep(interval)
            tally.flush()

    threading.Thread(target=flush_forever, name="metrics-flush", daemon=True).start()


class timed:  # a lower-case name: used like a function, ``with timed(...)``
    """Observe the duration of the ``with`` block in ``histogram`` with ``labels``.

    A class rather than a ``@contextmanager`` generator: a request enters
    several, and a generator costs several times as much CPU each."""

    __slots__ = ("_child", "_start")

    def __init__(self, histogram: Any, *labels: object) -> None:
        self._child = labelled(histogram, *labels)
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        observe(self._child, time.perf_counter() - self._start)


def render() -> bytes:
    """Prometheus text exposition, aggregated over all workers when multi-process."""
    flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)
