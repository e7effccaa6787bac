"""The storage dashboard: Consul operation latency, caches, write conflicts and
Consul errors, Consul's raft commit time and autopilot.
"""

from __future__ import annotations

from typing import Any

from monitoring.grafana.kit import NODE, RATE, Query, build_dashboard, quantile, stat_panel, thresholds
from monitoring.grafana.kit import timeseries_panel as series


def _hit_ratio(window: str) -> str:
    lookups = f"strongroom_cache_requests_total{{{NODE}"
    return f'sum by (cache) (rate({lookups}, result="hit"}}{window})) / sum by (cache) (rate({lookups}}}{window}))'


def dashboard() -> Any:
    op_seconds = "strongroom_storage_operation_duration_seconds"
    consul = 'backend="consul", '
    operations = [
        series(
            "Consul operation latency, p50",
            "Median latency of Strongroom's Consul storage operations (get, put, delete, list, txn).",
            "s",
            Query(quantile(0.5, op_seconds, "operation", consul), "{{operation}}"),
            width=8,
        ),
        series(
            "Consul operation latency, p99",
            "99th percentile latency of Strongroom's Consul storage operations.",
            "s",
            Query(quantile(0.99, op_seconds, "operation", consul), "{{operation}}"),
            width=8,
        ),
        series(
            "Consul operations",
            "Consul storage operations per second, by operation.",
            "ops",
            Query(f"sum by (operation) (rate({op_seconds}_count{{{consul}{NODE}}}{RATE}))", "{{operation}}"),
            width=8,
        ),
        series(
            "Barrier latency, p99",
            "99th percentile latency of barrier operations (AES-256-GCM plus the storage call beneath).",
            "s",
            Query(quantile(0.99, "strongroom_barrier_operation_duration_seconds", "operation"), "{{operation}}"),
            width=24,
        ),
    ]
    caches = [
        stat_panel(
            "Cache hit ratio over the range",
            "Share of cache lookups served from memory over the selected time range, per cache "
            "(mount table, policies, storage).",
            "percentunit",
            Query(_hit_ratio("[$__range]"), "{{cache}}"),
            width=8,
            height=8,
        ),
        series(
            "Cache hit ratio",
            "Share of cache lookups served from memory, per cache, over time.",
            "percentunit",
            Query(_hit_ratio(RATE), "{{cache}}"),
            width=8,
        ),
        series(
            "Cache lookups",
            "Cache lookups per second by cache and result.",
            "ops",
            Query(
                f"sum by (cache, result) (rate(strongroom_cache_requests_total{{{NODE}}}{RATE}))",
                "{{cache}} {{result}}",
            ),
            width=8,
        ),
    ]
    conflicts = [
        series(
            "Write conflicts (rejected transactions)",
            "Consul transactions refused per second: the check-session fence failed (a deposed active node "
            "tried to write) or a check-and-set lost to a concurrent write.",
            "cps",
            Query(
                f"sum by (instance) (rate(strongroom_consul_errors_total"
                f'{{{NODE}, kind=~"txn_rejected|write_conflict"}}{RATE}))',
                "{{instance}}",
            ),
            width=8,
        ),
        series(
            "Consul errors by kind",
            "Errors talking to Consul per second, by kind (connection, timeout, rejected transaction, ...).",
            "cps",
            Query(f"sum by (kind) (rate(strongroom_consul_errors_total{{{NODE}}}{RATE}))", "{{kind}}"),
            width=8,
        ),
        series(
            "Storage errors",
            "Storage operations that failed per second, by backend and error type.",
            "cps",
            Query(
                f"sum by (backend, error) (rate(strongroom_storage_errors_total{{{NODE}}}{RATE}))",
                "{{backend}} {{error}}",
            ),
            width=8,
        ),
    ]
    consul_servers = [
        series(
            "Consul raft commit time",
            "Time Consul's leader takes to commit a raft log entry (every Strongroom write is one): p50 and p99 "
            "over the agent's retention window, and the mean per interval. Reported by the raft leader.",
            "ms",
            Query('max by (instance) (consul_raft_commitTime{quantile="0.5"})', "{{instance}} p50"),
            Query('max by (instance) (consul_raft_commitTime{quantile="0.99"})', "{{instance}} p99"),
            Query(
                f"sum by (instance) (rate(consul_raft_commitTime_sum{RATE}))"
                f" / sum by (instance) (rate(consul_raft_commitTime_count{RATE}))",
                "{{instance}} mean",
            ),
            width=12,
        ),
        stat_panel(
            "Consul autopilot health",
            "Whether Consul's autopilot considers every server healthy (reported by the raft leader).",
            "none",
            Query("min(consul_autopilot_healthy)", "autopilot"),
            mappings={"0": ("Unhealthy", "red"), "1": ("Healthy", "green")},
            height=8,
        ),
        stat_panel(
            "Consul failure tolerance",
            "How many Consul servers may fail while the cluster keeps quorum: 1 for 3 servers, 0 means the "
            "next server lost stops every Strongroom write.",
            "none",
            Query("max(consul_autopilot_failure_tolerance)", "servers"),
            colours=thresholds("red", (1, "green")),
            height=8,
        ),
    ]
    return build_dashboard(
        "strongroom-storage",
        "Strongroom / Storage",
        "Consul storage latency, caches, write conflicts and Consul errors, and Consul's raft commit time.",
        [
            ("Consul storage operations", operations),
            ("Caches", caches),
            ("Write conflicts and errors", conflicts),
            ("Consul servers", consul_servers),
        ],
    )
