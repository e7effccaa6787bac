"""The cluster overview: each node's role and seal state, the active node and
since when, failovers, HAProxy's view of each node, the nodes' processes.
"""

from __future__ import annotations

from typing import Any

from monitoring.grafana.kit import (
    HAPROXY_BACKENDS,
    NODE,
    RATE,
    Query,
    build_dashboard,
    server_state_panel,
    stat_panel,
    state_panel,
    table_panel,
    thresholds,
)
from monitoring.grafana.kit import timeseries_panel as series

ROLE = (
    f"2 * max by (instance) (strongroom_core_active{{{NODE}}})"
    f" + max by (instance) (strongroom_core_performance_standby{{{NODE}}})"
)
ROLES = {"0": ("Standby", "blue"), "1": ("Performance standby", "purple"), "2": ("Active", "green")}
SEAL = (
    f"max by (instance) (strongroom_core_initialized{{{NODE}}})"
    f" + max by (instance) (strongroom_core_unsealed{{{NODE}}})"
)
SEALS = {"0": ("Not initialised", "orange"), "1": ("Sealed", "red"), "2": ("Unsealed", "green")}


def dashboard() -> Any:
    nodes = [
        stat_panel(
            "Role",
            "Each node's HA role: Active (holds the Consul lock, serves writes), Performance standby "
            "(serves reads locally, forwards writes) or Standby (forwards everything). Sealed nodes read Standby: "
            "see Seal state.",
            "none",
            Query(ROLE, "{{instance}}"),
            mappings=ROLES,
            width=8,
        ),
        stat_panel(
            "Seal state",
            "Each node's seal state: Unsealed (serving), Sealed (needs unseal keys, answers 503) or Not initialised.",
            "none",
            Query(SEAL, "{{instance}}"),
            mappings=SEALS,
            width=8,
        ),
        stat_panel(
            "Active nodes",
            "Number of nodes that report themselves active. Exactly 1 is healthy; 0 means writes fail "
            "(no leader), 2 or more would be a split brain (fencing keeps the deposed one from writing).",
            "none",
            Query(f"sum(max by (instance) (strongroom_core_active{{{NODE}}}))", "active"),
            colours=thresholds("red", (1, "green"), (2, "red")),
            width=4,
        ),
        stat_panel(
            "Active since",
            "Which node is active and when it became active (the time it acquired the HA lock).",
            "dateTimeFromNow",
            Query(
                f"max by (instance) (strongroom_core_active_since_timestamp_seconds{{{NODE}}} * 1000)"
                f" and on (instance) max by (instance) (strongroom_core_active{{{NODE}}}) == 1",
                "{{instance}}",
            ),
            width=4,
        ),
    ]
    failovers = [
        state_panel(
            "Role over time",
            "Each node's role over the time range: a failover shows as Active moving from one node's band "
            "to another's.",
            Query(ROLE, "{{instance}}"),
            mappings=ROLES,
        ),
        state_panel(
            "Seal state over time",
            "Each node's seal state over the time range: seals, unseals and restarts.",
            Query(SEAL, "{{instance}}"),
            mappings=SEALS,
        ),
        series(
            "Leadership changes",
            "Times a node became active (acquired) or stopped being active (lost) per interval. A hard-killed "
            "node cannot count its own loss: the acquisition on the next node is the failover.",
            "short",
            Query(
                f"sum by (instance) (increase(strongroom_core_leadership_acquired_total{{{NODE}}}{RATE}))",
                "{{instance}} acquired",
            ),
            Query(
                f"sum by (instance) (increase(strongroom_core_leadership_lost_total{{{NODE}}}{RATE}))",
                "{{instance}} lost",
            ),
            bars=True,
            width=8,
        ),
        stat_panel(
            "Leadership acquisitions in range",
            "Times any node became active in the selected time range: the first election plus one per failover.",
            "short",
            Query(f"sum(increase(strongroom_core_leadership_acquired_total{{{NODE}}}[$__range]))", "acquired"),
            Query(f"sum(increase(strongroom_core_leadership_lost_total{{{NODE}}}[$__range]))", "lost"),
            width=4,
            height=8,
        ),
        series(
            "Seal and unseal events",
            "Seal state changes per interval, by node and event.",
            "short",
            Query(
                f"sum by (instance, event) (increase(strongroom_core_seal_events_total{{{NODE}}}{RATE}))",
                "{{instance}} {{event}}",
            ),
            bars=True,
            width=6,
        ),
        series(
            "HA lock session renewals",
            "Renewals of each node's Consul session behind the HA lock, by result; failures precede a lost lock.",
            "ops",
            Query(
                f"sum by (instance, result) (rate(strongroom_ha_lock_renewals_total{{{NODE}}}{RATE}))",
                "{{instance}} {{result}}",
            ),
            width=6,
        ),
    ]
    front_door = [
        server_state_panel(width=12),
        stat_panel(
            "HAProxy: servers up per backend",
            "Servers HAProxy considers up: strongroom_write should have exactly 1 (the active node), "
            "strongroom_read the active node plus every performance standby.",
            "none",
            Query(f"max by (proxy) (haproxy_backend_active_servers{{{HAPROXY_BACKENDS}}})", "{{proxy}}"),
            colours=thresholds("red", (1, "green")),
            width=4,
            height=6,
        ),
        series(
            "HAProxy: failed health checks",
            "Health checks of each node that failed, per interval. A standby fails the write backend's check "
            "by design (429/473); a burst on every backend means a node went down.",
            "short",
            Query(
                f"sum by (proxy, server) (increase(haproxy_server_check_failures_total{{{HAPROXY_BACKENDS}}}{RATE}))",
                "{{proxy}} / {{server}}",
            ),
            bars=True,
            width=8,
            height=6,
        ),
    ]
    on_node = f"and on (instance) strongroom_core_unsealed{{{NODE}}}"
    processes = [
        series(
            "Resident memory",
            "Resident memory of each node's processes (node core and gunicorn workers), summed per node.",
            "bytes",
            Query(f"sum by (instance) (process_resident_memory_bytes{{{NODE}}} {on_node})", "{{instance}}"),
            width=8,
        ),
        series(
            "CPU",
            "CPU used by each node's processes, in cores (100% = one core busy).",
            "percentunit",
            Query(f"sum by (instance) (rate(process_cpu_seconds_total{{{NODE}}}{RATE}) {on_node})", "{{instance}}"),
            width=8,
        ),
        table_panel(
            "Build",
            "Version and build labels each node reports (strongroom_build_info).",
            "none",
            Query(f"strongroom_build_info{{{NODE}}}", instant=True, table_format=True),
            width=8,
        ),
    ]
    return build_dashboard(
        "strongroom-overview",
        "Strongroom / Cluster overview",
        "Roles, seal state, the active node and failovers of a Strongroom cluster, and how HAProxy sees it.",
        [
            ("Nodes", nodes),
            ("Failovers", failovers),
            ("Front door: HAProxy's view", front_door),
            ("Processes", processes),
        ],
    )
