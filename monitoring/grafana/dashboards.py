"""Strongroom's Grafana dashboards, as code.

``python -m monitoring.grafana.dashboards`` (re)writes
``monitoring/grafana/dashboards/<uid>.json``, the files Grafana's file
provider loads (``provisioning/dashboards/strongroom.yml``).  The JSON is
committed; a test regenerates it and fails on any difference, so edit this
file, never the JSON.

Metric names: Strongroom's own (``strongroom_*``, service/strongroom/metrics.py),
HAProxy 2.6's built-in exporter (``haproxy_*``, names as served by a real
haproxy rendered from our template) and Consul's agent metrics
(``consul_*``, as served by Consul 1.8.7 with ``prometheus_retention_time``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from monitoring.grafana.kit import NODE, Query, build_dashboard, stat_panel, state_panel, table_panel, thresholds
from monitoring.grafana.kit import timeseries_panel as series

OUTPUT_DIR = Path(__file__).parent / "dashboards"

RATE = "[$__rate_interval]"
HAPROXY_BACKENDS = 'proxy=~"strongroom_.*"'

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
SERVER_STATE = f'max by (proxy, server) (haproxy_server_status{{{HAPROXY_BACKENDS}, state="UP"}})'
SERVER_STATES = {"0": ("DOWN", "red"), "1": ("UP", "green")}


def _requests(matchers: str = "") -> str:
    extra = f", {matchers}" if matchers else ""
    return f"rate(strongroom_http_requests_total{{{NODE}{extra}}}{RATE})"


def _status(first_digit: str) -> str:
    # Matches a full code (503) and a class (5xx) alike.
    return f'status=~"{first_digit}.*"'


def _quantile(q: float, metric: str, by: str, matchers: str = "", window: str = RATE) -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{matchers}{NODE}}}{window})))"


def _hit_ratio(window: str) -> str:
    lookups = f"strongroom_cache_requests_total{{{NODE}"
    return f'sum by (cache) (rate({lookups}, result="hit"}}{window})) / sum by (cache) (rate({lookups}}}{window}))'


def _server_state_panel(width: int) -> Any:
    return stat_panel(
        "HAProxy: server state",
        "How HAProxy's health checks see each node in each backend. strongroom_write keeps only the node "
        "answering 200 on /v1/sys/health (the active node); strongroom_read also keeps performance standbys "
        "(200 with perfstandbyok=true). A node DOWN in both is sealed, a plain standby or unreachable.",
        "none",
        Query(SERVER_STATE, "{{proxy}} / {{server}}"),
        mappings=SERVER_STATES,
        width=width,
        height=6,
    )


def overview() -> Any:
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
        _server_state_panel(width=12),
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


def api() -> Any:
    total = f"sum({_requests()})"
    server_errors = _requests(_status("5"))
    client_errors = _requests(_status("4"))
    forwarded = f"rate(strongroom_ha_forwarded_requests_total{{{NODE}}}{RATE})"
    ratio_colours = thresholds("green", (0.01, "orange"), (0.05, "red"))
    traffic = [
        stat_panel(
            "Request rate",
            "HTTP requests per second the selected nodes answered (all routes, all statuses).",
            "reqps",
            Query(total, "requests"),
        ),
        stat_panel(
            "5xx ratio",
            "Share of responses with a 5xx status (server errors, sealed, no active node).",
            "percentunit",
            Query(f"sum({server_errors}) / {total}", "5xx"),
            colours=ratio_colours,
        ),
        stat_panel(
            "4xx ratio",
            "Share of responses with a 4xx status (bad requests, permission denied, unknown paths).",
            "percentunit",
            Query(f"sum({client_errors}) / {total}", "4xx"),
            colours=ratio_colours,
        ),
        stat_panel(
            "Forwarded share",
            "Share of the requests the selected nodes received that they forwarded to the active node.",
            "percentunit",
            Query(f"sum({forwarded}) / {total}", "forwarded"),
        ),
        series(
            "Requests by node",
            "HTTP requests per second each node answered.",
            "reqps",
            Query(f"sum by (instance) ({_requests()})", "{{instance}}"),
        ),
        series(
            "Responses by status class",
            "HTTP responses per second by status class.",
            "reqps",
            *(Query(f"sum({_requests(_status(c))})", f"{c}xx") for c in "2345"),
            stacked=True,
        ),
    ]
    errors = [
        series(
            "Error ratio",
            "Share of responses that were client (4xx) or server (5xx) errors.",
            "percentunit",
            Query(f"sum({server_errors}) / {total}", "5xx"),
            Query(f"sum({client_errors}) / {total}", "4xx"),
        ),
        series(
            "Errors by route",
            "4xx and 5xx responses per second by route template, method and status.",
            "reqps",
            Query(f"sum by (route, method, status) ({_requests(_status('[45]'))})", "{{method}} {{route}} {{status}}"),
        ),
    ]
    request_seconds = "strongroom_http_request_duration_seconds"
    latency = [
        series(
            "p50 latency by route",
            "Median request latency by route template, from the request duration histogram.",
            "s",
            Query(_quantile(0.5, request_seconds, "route"), "{{route}}"),
        ),
        series(
            "p99 latency by route",
            "99th percentile request latency by route template, from the request duration histogram.",
            "s",
            Query(_quantile(0.99, request_seconds, "route"), "{{route}}"),
        ),
        series(
            "p50 and p99 latency by node",
            "Median and 99th percentile latency of all requests, per node.",
            "s",
            Query(_quantile(0.5, request_seconds, "instance"), "{{instance}} p50"),
            Query(_quantile(0.99, request_seconds, "instance"), "{{instance}} p99"),
            width=24,
        ),
    ]
    forwarding = [
        series(
            "Forwarded share by node",
            "Share of each node's requests it forwarded to the active node (0 on the active node; on a "
            "performance standby the writes, on a plain standby everything).",
            "percentunit",
            Query(f"sum by (instance) ({forwarded}) / sum by (instance) ({_requests()})", "{{instance}}"),
            width=8,
        ),
        series(
            "Forwarded requests by reason",
            "Requests forwarded to the active node per second, by why they were forwarded.",
            "reqps",
            Query(f"sum by (reason) ({forwarded})", "{{reason}}"),
            width=8,
        ),
        series(
            "Forwarding errors",
            "Forwarded requests that failed to reach the active node, per second, by node and reason.",
            "reqps",
            Query(
                f"sum by (instance, reason) (rate(strongroom_ha_forward_errors_total{{{NODE}}}{RATE}))",
                "{{instance}} {{reason}}",
            ),
            width=8,
        ),
    ]
    top = [
        table_panel(
            "Top routes by request rate",
            "The 10 busiest route templates and methods over the selected time range, in requests per second.",
            "reqps",
            Query(
                f"topk(10, sum by (route, method) (rate(strongroom_http_requests_total{{{NODE}}}[$__range])))",
                instant=True,
                table_format=True,
            ),
        ),
        table_panel(
            "Slowest routes (p99 over the range)",
            "The 10 route templates with the highest 99th percentile latency over the selected time range.",
            "s",
            Query(
                f"topk(10, {_quantile(0.99, request_seconds, 'route', window='[$__range]')})",
                instant=True,
                table_format=True,
            ),
        ),
    ]
    return build_dashboard(
        "strongroom-api",
        "Strongroom / API",
        "Request rate, errors, latency by route, forwarding to the active node and the busiest routes.",
        [
            ("Traffic", traffic),
            ("Errors", errors),
            ("Latency", latency),
            ("Forwarding", forwarding),
            ("Top routes", top),
        ],
    )


def storage() -> Any:
    op_seconds = "strongroom_storage_operation_duration_seconds"
    consul = 'backend="consul", '
    operations = [
        series(
            "Consul operation latency, p50",
            "Median latency of Strongroom's Consul storage operations (get, put, delete, list, txn).",
            "s",
            Query(_quantile(0.5, op_seconds, "operation", consul), "{{operation}}"),
            width=8,
        ),
        series(
            "Consul operation latency, p99",
            "99th percentile latency of Strongroom's Consul storage operations.",
            "s",
            Query(_quantile(0.99, op_seconds, "operation", consul), "{{operation}}"),
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
            Query(_quantile(0.99, "strongroom_barrier_operation_duration_seconds", "operation"), "{{operation}}"),
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
                f'sum by (instance) (rate(strongroom_consul_errors_total{{{NODE}, kind="txn_rejected"}}{RATE}))',
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


def front_door() -> Any:
    backends = f"{{{HAPROXY_BACKENDS}}}"
    servers = [
        stat_panel(
            "Servers up, write backend",
            "Nodes HAProxy sends writes to. Exactly 1 (the active node) is healthy: 0 means writes fail with 503.",
            "none",
            Query('max(haproxy_backend_active_servers{proxy="strongroom_write"})', "strongroom_write"),
            colours=thresholds("red", (1, "green"), (2, "red")),
        ),
        stat_panel(
            "Servers up, read backend",
            "Nodes HAProxy spreads reads over: the active node and every performance standby. 1 means no "
            "read capacity to spare.",
            "none",
            Query('max(haproxy_backend_active_servers{proxy="strongroom_read"})', "strongroom_read"),
            colours=thresholds("red", (1, "orange"), (2, "green")),
        ),
        _server_state_panel(width=12),
        series(
            "Servers up over time",
            "Servers up per backend over time: a failover dips the write backend to 0 for about a second.",
            "none",
            Query(f"max by (proxy) (haproxy_backend_active_servers{backends})", "{{proxy}}"),
            steps=True,
        ),
        series(
            "Server state changes",
            "Times HAProxy marked a server up or down per interval (check flapping shows here).",
            "short",
            Query(
                f"sum by (proxy, server) (increase(haproxy_server_check_up_down_total{backends}{RATE}))",
                "{{proxy}} / {{server}}",
            ),
            bars=True,
        ),
    ]
    traffic = [
        series(
            "Sessions",
            "Sessions open now on the front door and on each backend.",
            "short",
            Query('sum(haproxy_frontend_current_sessions{proxy="strongroom"})', "front door"),
            Query(f"sum by (proxy) (haproxy_backend_current_sessions{backends})", "{{proxy}}"),
        ),
        series(
            "Requests by backend",
            "HTTP requests per second HAProxy sent to each backend.",
            "reqps",
            Query(f"sum by (proxy) (rate(haproxy_backend_http_requests_total{backends}{RATE}))", "{{proxy}}"),
        ),
        series(
            "5xx responses",
            "5xx responses per second: from the nodes, per backend, and at the front door (which adds "
            "HAProxy's own 503 when a backend has no server up).",
            "reqps",
            Query(
                f'sum by (proxy) (rate(haproxy_backend_http_responses_total{{{HAPROXY_BACKENDS}, code="5xx"}}{RATE}))',
                "{{proxy}}",
            ),
            Query(
                f'sum(rate(haproxy_frontend_http_responses_total{{proxy="strongroom", code="5xx"}}{RATE}))',
                "front door",
            ),
        ),
        series(
            "Response time",
            "Average response time per backend over HAProxy's last 1024 requests.",
            "s",
            Query(f"max by (proxy) (haproxy_backend_response_time_average_seconds{backends})", "{{proxy}}"),
        ),
    ]
    retries = [
        series(
            "Retries and redispatches",
            "Requests HAProxy retried (a connection to a node failed) or redispatched to another server, per second.",
            "cps",
            Query(f"sum by (proxy) (rate(haproxy_backend_retry_warnings_total{backends}{RATE}))", "{{proxy}} retries"),
            Query(
                f"sum by (proxy) (rate(haproxy_backend_redispatch_warnings_total{backends}{RATE}))",
                "{{proxy}} redispatches",
            ),
            width=8,
        ),
        series(
            "Connection errors",
            "Connections to nodes that failed, per second and backend.",
            "cps",
            Query(f"sum by (proxy) (rate(haproxy_backend_connection_errors_total{backends}{RATE}))", "{{proxy}}"),
            width=8,
        ),
        series(
            "Queue",
            "Requests waiting for a server per backend: above 0 when every server is at its connection limit "
            "or none is up.",
            "short",
            Query(f"sum by (proxy) (haproxy_backend_current_queue{backends})", "{{proxy}}"),
            width=8,
        ),
    ]
    return build_dashboard(
        "strongroom-frontdoor",
        "Strongroom / Front door",
        "HAProxy in front of the cluster: servers up per backend, sessions, 5xx, retries and queue. "
        "HAProxy's series carry no node, so the node variable does not filter them.",
        [("Servers", servers), ("Traffic", traffic), ("Retries and queue", retries)],
    )


DASHBOARDS = (overview, api, storage, front_door)


def render() -> dict[str, str]:
    """``{file name: JSON text}`` for every dashboard, exactly as committed."""
    rendered = {}
    for make in DASHBOARDS:
        model = json.loads(JSONEncoder(sort_keys=True).encode(make().build()))
        rendered[f"{model['uid']}.json"] = json.dumps(model, indent=2, sort_keys=True) + "\n"
    return rendered


def write(directory: Path = OUTPUT_DIR) -> list[Path]:
    """Write every dashboard into ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def main() -> int:
    for path in write():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
