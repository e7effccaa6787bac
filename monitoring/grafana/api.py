"""The API dashboard: request rate, errors, latency by route, forwarding to the
active node, the busiest and slowest routes.
"""

from __future__ import annotations

from typing import Any

from monitoring.grafana.kit import NODE, RATE, Query, build_dashboard, quantile, stat_panel, table_panel, thresholds
from monitoring.grafana.kit import timeseries_panel as series


def _requests(matchers: str = "") -> str:
    extra = f", {matchers}" if matchers else ""
    return f"rate(strongroom_http_requests_total{{{NODE}{extra}}}{RATE})"


def _status(first_digit: str) -> str:
    # Matches a full code (503) and a class (5xx) alike.
    return f'status=~"{first_digit}.*"'


# HAProxy's health checks get 429/473 from every standby: counted, they make an idle, healthy
# cluster look like 40 % client errors.  The alert rules leave sys/health out the same way.
NOT_HEALTH = 'route!="sys/health"'


def dashboard() -> Any:
    total = f"sum({_requests()})"
    answered = f"sum({_requests(NOT_HEALTH)})"
    server_errors = _requests(f"{NOT_HEALTH}, {_status('5')}")
    client_errors = _requests(f"{NOT_HEALTH}, {_status('4')}")
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
            "Share of responses with a 5xx status (server errors, sealed, no active node); health checks left out.",
            "percentunit",
            Query(f"sum({server_errors}) / {answered}", "5xx"),
            colours=ratio_colours,
        ),
        stat_panel(
            "4xx ratio",
            "Share of responses with a 4xx status (bad requests, permission denied, unknown paths); health "
            "checks left out (a standby answers them 429 or 473).",
            "percentunit",
            Query(f"sum({client_errors}) / {answered}", "4xx"),
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
            "HTTP responses per second by status class (the first digit of the status code).",
            "reqps",
            # $1 is label_replace's first group (the first digit), not a Grafana variable.
            Query(f'sum by (class) (label_replace({_requests()}, "class", "$1", "status", "(.).*"))', "{{class}}xx"),
            stacked=True,
        ),
    ]
    errors = [
        series(
            "Error ratio",
            "Share of responses that were client (4xx) or server (5xx) errors; health checks left out.",
            "percentunit",
            Query(f"sum({server_errors}) / {answered}", "5xx"),
            Query(f"sum({client_errors}) / {answered}", "4xx"),
        ),
        series(
            "Errors by route",
            "4xx and 5xx responses per second by route template, method and status (health checks left out).",
            "reqps",
            Query(
                f"sum by (route, method, status) ({_requests(f'{NOT_HEALTH}, ' + _status('[45]'))})",
                "{{method}} {{route}} {{status}}",
            ),
        ),
    ]
    request_seconds = "strongroom_http_request_duration_seconds"
    latency = [
        series(
            "p50 latency by route",
            "Median request latency by route template, from the request duration histogram.",
            "s",
            Query(quantile(0.5, request_seconds, "route"), "{{route}}"),
        ),
        series(
            "p99 latency by route",
            "99th percentile request latency by route template, from the request duration histogram.",
            "s",
            Query(quantile(0.99, request_seconds, "route"), "{{route}}"),
        ),
        series(
            "p50 and p99 latency by node",
            "Median and 99th percentile latency of all requests, per node.",
            "s",
            Query(quantile(0.5, request_seconds, "instance"), "{{instance}} p50"),
            Query(quantile(0.99, request_seconds, "instance"), "{{instance}} p99"),
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
                f"topk(10, {quantile(0.99, request_seconds, 'route', window='[$__range]')})",
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
