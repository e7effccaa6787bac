"""The front door dashboard: HAProxy's backends for the cluster, servers up,
sessions, 5xx, retries, queue.
"""

from __future__ import annotations

from typing import Any

from monitoring.grafana.kit import (
    HAPROXY_BACKENDS,
    RATE,
    Query,
    build_dashboard,
    server_state_panel,
    stat_panel,
    thresholds,
)
from monitoring.grafana.kit import timeseries_panel as series


def dashboard() -> Any:
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
        server_state_panel(width=12),
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
