"""Process metrics of a multi-process node: the node core and every worker.

prometheus_client's ``ProcessCollector`` reports the process that renders,
which in a node is one worker among several.  Instead each process samples
itself (``sample``: ``/proc/self/stat``, its fd directory and its fd limit) on
the metric flush cadence into ``liveall`` gauges labelled ``process``
(``core`` or ``worker``) and, by the multiprocess mode, ``pid``: a dead
worker's series vanish with it (gunicorn's ``child_exit`` marks it dead).
``node_families`` sums them into the standard ``process_*`` names for the
node at render time.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import Gauge
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from strongroom import metrics

P = metrics.PREFIX
cpu_seconds = Gauge(
    P + "process_cpu_seconds_total", "CPU seconds used by the process", ["process"], multiprocess_mode="liveall"
)
resident_bytes = Gauge(
    P + "process_resident_memory_bytes", "Resident memory of the process", ["process"], multiprocess_mode="liveall"
)
open_fds = Gauge(
    P + "process_open_fds", "Open file descriptors of the process", ["process"], multiprocess_mode="liveall"
)
max_fds = Gauge(P + "process_max_fds", "File descriptor limit of the process", ["process"], multiprocess_mode="liveall")
start_time = Gauge(
    P + "process_start_time_seconds",
    "Unix time the process started",
    ["process"],
    multiprocess_mode="liveall",
)

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_boot_time: float | None = None


def _boot() -> float:
    global _boot_time
    if _boot_time is None:
        with open("/proc/stat", "rb") as stat:
            for line in stat:
                if line.startswith(b"btime "):
                    _boot_time = float(line.split()[1])
                    break
            else:
                _boot_time = 0.0
    return _boot_time


def read_self() -> dict[str, float]:
    """This process's CPU seconds, resident bytes, open fds, fd limit and start time, from ``/proc``."""
    with open("/proc/self/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    # Fields after the command name, counted from 3 (state) as in proc(5).
    utime, stime, started, rss = float(fields[11]), float(fields[12]), float(fields[19]), float(fields[21])
    return {
        "cpu": (utime + stime) / _TICKS,
        "rss": rss * _PAGE,
        "open_fds": float(len(os.listdir("/proc/self/fd"))),
        "max_fds": float(resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
        "start_time": _boot() + started / _TICKS,
    }


def sample(process: str) -> None:
    """Write this process's figures to its gauges (``process``: ``core`` or ``worker``)."""
    try:
        figures = read_self()
    except OSError:
        return  # no /proc here: no process metrics rather than no metrics
    metrics.labelled(cpu_seconds, process).set(figures["cpu"])
    metrics.labelled(resident_bytes, process).set(figures["rss"])
    metrics.labelled(open_fds, process).set(figures["open_fds"])
    metrics.labelled(max_fds, process).set(figures["max_fds"])
    metrics.labelled(start_time, process).set(figures["start_time"])


def node_families(families: Iterable[Metric]) -> Iterator[Metric]:
    """The node's standard ``process_*`` families from every live process's gauges:
    CPU, memory and open fds summed, the largest fd limit, the earliest start."""
    values: dict[str, list[float]] = {}
    for family in families:
        if family.name.startswith(P + "process_"):
            values[family.name] = [s.value for s in family.samples]
    if not values:
        return
    cpu = CounterMetricFamily("process_cpu_seconds", "CPU seconds used by the node's processes")
    cpu.add_metric([], sum(values.get(cpu_seconds._name, [])))
    yield cpu
    yield _gauge(
        "process_resident_memory_bytes", "Resident memory of the node's processes", values, resident_bytes, sum
    )
    yield _gauge("process_open_fds", "Open file descriptors of the node's processes", values, open_fds, sum)
    yield _gauge("process_max_fds", "The largest fd limit of the node's processes", values, max_fds, max)
    yield _gauge("process_start_time_seconds", "When the node's oldest process started", values, start_time, min)


def _gauge(name: str, doc: str, values: dict[str, list[float]], source: Any, combine: Any) -> GaugeMetricFamily:
    found = values.get(source._name) or [0.0]
    return GaugeMetricFamily(name, doc, value=combine(found))
