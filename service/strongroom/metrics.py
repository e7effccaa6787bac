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
from collections.abc import Iterable
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
forward_errors_total = Counter(
    PREFIX + "ha_forward_errors_total", "Requests a standby failed to forward to the active node", ["reason"]
)
leadership_setup_failed_total = Counter(
    PREFIX + "core_leadership_setup_failed_total", "Times this node took the lock but did not become active"
)
leadership_held_seconds_total = Counter(
    PREFIX + "core_leadership_held_seconds_total",
    "Seconds this node was active, summed over the leaderships it lost (Vault's leadership_lost summary)",
)
seal_events_total = Counter(PREFIX + "core_seal_events_total", "Seals and unseals of this node", ["event"])
core_active_since = Gauge(
    PREFIX + "core_active_since_timestamp_seconds",
    "Unix time this node became the active node, 0 while it is not",
    multiprocess_mode="max",
)
core_initialized = Gauge(PREFIX + "core_initialized", "1 once the storage is initialised", multiprocess_mode="max")
ha_lock_renewals_total = Counter(
    PREFIX + "ha_lock_renewals_total",
    "HA session heartbeats (TTL check passes) and confirmations of the held lock, by result",
    ["result"],
)
ha_leader_watched = Gauge(
    PREFIX + "ha_leader_watched",
    "1 while this standby holds its watch connection to the active node (a killed active node is then replaced "
    "without waiting for its TTL)",
    multiprocess_mode="max",
)
ha_leader_gone_total = Counter(
    PREFIX + "ha_leader_gone_total",
    "Times this standby freed the lock of an active node whose processes were gone, without waiting for its TTL",
)
token_creations_total = Counter(
    PREFIX + "token_creations_total",
    "Tokens created, by auth method type, mount, token type and TTL bucket (Vault's token.creation)",
    ["auth_method", "mount_point", "token_type", "creation_ttl"],
)
audit_failures_total = Counter(
    PREFIX + "audit_log_failures_total", "Audit entries no enabled device could write", ["phase"]
)
consul_errors_total = Counter(PREFIX + "consul_errors_total", "Failed Consul calls, by kind", ["kind"])
table_watch_answers_total = Counter(
    PREFIX + "table_watch_answers_total",
    "Answers to the node core's blocking queries on the tables it watches (changes and 10 s timeouts)",
    ["table"],
)
build_info = Gauge(
    PREFIX + "build_info", "1, labelled with the build", ["version", "python_version"], multiprocess_mode="max"
)


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


#: Vault's token TTL buckets (``helper/metricsutil.TTLBucket``): a TTL gets the
#: label of the first bound it does not exceed, ``OVERFLOW_BUCKET`` past the last.
TTL_BUCKETS = (
    (60, "1m"),
    (600, "10m"),
    (1200, "20m"),
    (3600, "1h"),
    (7200, "2h"),
    (86400, "1d"),
    (2 * 86400, "2d"),
    (7 * 86400, "7d"),
    (30 * 86400, "30d"),
)
OVERFLOW_BUCKET = "+Inf"
_TTL_BOUNDS = [bound for bound, _ in TTL_BUCKETS]


def ttl_bucket(seconds: float) -> str:
    """Vault's ``creation_ttl`` label of a TTL in seconds (0 is ``1m``, as in Vault's ``TTLBucket``)."""
    position = bisect.bisect_left(_TTL_BOUNDS, seconds)
    return TTL_BUCKETS[position][1] if position < len(TTL_BUCKETS) else OVERFLOW_BUCKET


def count_token_creation(auth_method: str, mount_point: str, ttl: float, token_type: str = "service") -> None:
    """One token created by ``auth_method`` (the mount's type) at ``mount_point`` with ``ttl`` seconds."""
    inc(labelled(token_creations_total, auth_method, mount_point, token_type, ttl_bucket(ttl)))


#: The ``kind`` label of ``consul_errors_total``.
CONSUL_ERROR_KINDS = frozenset(
    {"timeout", "connection", "http_5xx", "http_4xx", "txn_rejected", "write_conflict", "lock_lost", "other"}
)


def count_consul_error(kind: str) -> None:
    """One failed Consul call of ``kind`` (one of ``CONSUL_ERROR_KINDS``, else ``other``)."""
    inc(labelled(consul_errors_total, kind if kind in CONSUL_ERROR_KINDS else "other"))


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


_IS_HISTOGRAM: dict[type, bool] = {}


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
        histogram = _IS_HISTOGRAM.get(type(child))
        if histogram is None:  # isinstance goes through prometheus_client's ABC machinery: once per type
            histogram = _IS_HISTOGRAM[type(child)] = isinstance(child, Histogram)
        if histogram:
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


def defer_updates(interval: float = FLUSH_SECONDS, process: str = "worker") -> None:
    """From now on tally ``inc``/``observe`` in memory, flushed every ``interval``
    seconds by a daemon thread (a greenlet in a gevent worker), which also
    samples this process's CPU, memory and fds as a ``process`` (``metrics_process``)."""
    global _tally, _process
    if _tally is not None:
        return
    tally = _tally = Tally()
    _process = process

    def flush_forever() -> None:
        from strongroom import metrics_process

        while True:
            time.sleep(interval)
            tally.flush()
            metrics_process.sample(process)

    threading.Thread(target=flush_forever, name="metrics-flush", daemon=True).start()


#: What this process is in the node (``core`` or ``worker``), for its process metrics.
_process = "worker"


def sample_process_forever(process: str, interval: float = FLUSH_SECONDS) -> None:
    """Sample this process's CPU, memory and fds every ``interval`` seconds (a process
    that does not ``defer_updates``: the node core)."""
    global _process
    _process = process

    def sample_forever() -> None:
        from strongroom import metrics_process

        while True:
            metrics_process.sample(process)
            time.sleep(interval)

    threading.Thread(target=sample_forever, name="metrics-process", daemon=True).start()


#: The label values every labelled counter of the node starts with at 0, so a
#: dashboard or an alert rule (``rate(...) > 0``) finds the series before the first event.
INITIAL_LABELS = {
    "forwarded_total": ("standby", "write"),
    "forward_errors_total": ("no_leader", "loop", "timeout", "connection", "tls", "other"),
    "seal_events_total": ("seal", "unseal"),
    "ha_lock_renewals_total": ("ok", "failed"),
    "audit_failures_total": ("request", "response"),
    "consul_errors_total": tuple(sorted(CONSUL_ERROR_KINDS)),
    "table_watch_answers_total": ("mounts", "auth", "policy", "audit", "keyring"),
}


def initialize_labels() -> None:
    """Create every series of ``INITIAL_LABELS`` at 0 (once per node: counters are summed)."""
    for name, values in INITIAL_LABELS.items():
        for value in values:
            labelled(globals()[name], value)


def set_build_info(version: str) -> None:
    """``strongroom_build_info{version, python_version} 1``."""
    import platform

    labelled(build_info, version, platform.python_version()).set(1)


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


class _Families:
    """A collector handing back families collected already."""

    def __init__(self, families: list) -> None:
        self._families = families

    def collect(self) -> list:
        return self._families


def collect() -> list:
    """Every family of Strongroom's own series, summed over the node's processes
    when multi-process, with the usage gauges and the node's ``process_*``."""
    from strongroom import metrics_process, metrics_usage

    flush()
    metrics_process.sample(_process)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        families = list(multiprocess.MultiProcessCollector(None).collect())
    else:
        from prometheus_client import REGISTRY

        families = list(REGISTRY.collect())
    names = {family.name for family in families}
    families += [family for family in metrics_process.node_families(families) if family.name not in names]
    families += list(metrics_usage.families(metrics_usage.current()))
    return families


def render(vault_names: bool = False, cluster: str = "", mount_points: Iterable[str] = ()) -> bytes:
    """Prometheus text exposition, aggregated over all workers when multi-process;
    with ``vault_names`` Vault's names follow, derived from the same figures
    (``metrics_vault``), ``cluster`` being their ``cluster`` label and
    ``mount_points`` the mounts of Vault's per-mount route timers."""
    families = collect()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    text = generate_latest(registry)
    if not vault_names:
        return text
    from strongroom import metrics_usage, metrics_vault

    derived = metrics_vault.vault_families(families, metrics_usage.current(), cluster, mount_points)
    return text + metrics_vault.exposition(derived)
