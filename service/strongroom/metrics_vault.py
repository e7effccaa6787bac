"""Vault's metric names, derived at render time from Strongroom's own series.

https://developer.hashicorp.com/vault/docs/internals/telemetry/metrics/all

An existing Vault dashboard or alert rule reads a Strongroom node unchanged
when ``sys/metrics`` also carries Vault's names with Vault's types, units and
labels.  Nothing here runs on the request path: ``vault_families`` reads the
families ``strongroom.metrics.render`` collected (already summed over the
workers) and translates them, so a request updates one set of series only.

Translation rules:

* Vault's timers are summaries in milliseconds: a histogram in seconds gives
  ``_sum`` x 1000 and ``_count``.  Quantile lines are left out: Vault's are
  over a sliding window, and histogram buckets cannot give them honestly.
* ``vault_core_handle_request`` counts what Vault's ``Core.HandleRequest``
  sees: every logical request (the ``/v1/`` sink, sys backend included),
  logins excepted (``vault_core_handle_login_request``: a route under
  ``auth/`` whose template has a ``login`` segment), and not the endpoints
  Vault serves outside its core (``sys/health``, ``sys/seal-status``,
  ``sys/init``, ``sys/unseal``, ``sys/leader``, ``sys/metrics``).  A request a
  standby forwards is counted on both nodes (Vault counts it on the active).
* Node-state gauges and ``vault_core_response_status_code`` and
  ``vault_token_*`` carry Vault's ``cluster`` label; the usage gauges also
  ``namespace="root"`` (Strongroom has one namespace).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from strongroom import metrics

#: Routes Vault serves in its HTTP layer, outside ``Core.HandleRequest``.
OUTSIDE_CORE_ROUTES = frozenset(
    {"sys/health", "sys/seal-status", "sys/init", "sys/unseal", "sys/leader", "sys/metrics"}
)
NAMESPACE = "root"


def is_login_route(route: str) -> bool:
    """True for a login route template (``auth/userpass/login/:username``, ``auth/approle/login``)."""
    segments = route.split("/")
    return segments[0] == "auth" and "login" in segments[2:]


def _samples(families: Iterable[Metric]) -> dict[str, list[Any]]:
    """Every sample by sample name."""
    by_name: dict[str, list[Any]] = {}
    for family in families:
        for sample in family.samples:
            by_name.setdefault(sample.name, []).append(sample)
    return by_name


def _total(samples: Mapping[str, list[Any]], name: str, **labels: str) -> float:
    return sum(
        s.value for s in samples.get(name, ()) if all(s.labels.get(key) == value for key, value in labels.items())
    )


def _metric(name: str, kind: str, doc: str) -> Metric:
    return Metric(name, doc, kind)


def _summary_ms(name: str, doc: str, seconds: float, count: float) -> Metric:
    family = _metric(name, "summary", doc + " (milliseconds)")
    family.add_sample(name + "_sum", {}, seconds * 1000.0)
    family.add_sample(name + "_count", {}, count)
    return family


def _single(name: str, kind: str, doc: str, value: float, labels: Mapping[str, str] | None = None) -> Metric:
    family = _metric(name, kind, doc)
    family.add_sample(name, dict(labels or {}), value)
    return family


def _histogram_summary(samples: Mapping[str, list[Any]], histogram: str, name: str, doc: str, **labels: str) -> Metric:
    return _summary_ms(
        name, doc, _total(samples, histogram + "_sum", **labels), _total(samples, histogram + "_count", **labels)
    )


def request_families(samples: Mapping[str, list[Any]], cluster: str) -> list[Metric]:
    """``vault_core_handle_request``, ``vault_core_handle_login_request`` and
    ``vault_core_response_status_code`` from the request histogram and counter."""
    durations = metrics.PREFIX + "http_request_duration_seconds"
    handled = [0.0, 0.0]
    logins = [0.0, 0.0]
    for position, suffix in enumerate(("_sum", "_count")):
        for sample in samples.get(durations + suffix, ()):
            route = sample.labels.get("route", "")
            if route in OUTSIDE_CORE_ROUTES:
                continue
            (logins if is_login_route(route) else handled)[position] += sample.value
    statuses = _metric("vault_core_response_status_code", "counter", "HTTP responses by status code")
    codes: dict[str, float] = {}
    for sample in samples.get(metrics.PREFIX + "http_requests_total", ()):
        status = sample.labels.get("status", "other")
        codes[status] = codes.get(status, 0.0) + sample.value
    for code, value in sorted(codes.items()):
        kind = f"{code[0]}xx" if code[:1].isdigit() else "unknown"
        statuses.add_sample(statuses.name, {"cluster": cluster, "code": code, "type": kind}, value)
    return [
        _summary_ms("vault_core_handle_request", "Time to handle a non-login request", *handled),
        _summary_ms("vault_core_handle_login_request", "Time to handle a login request", *logins),
        statuses,
    ]


#: Vault's logical operation of a request, by our ``method`` label.  Vault tells
#: ``create`` from ``update`` with an existence check and a ``GET`` with
#: ``list=true`` is its ``list``: neither is in our labels, so a write is an
#: ``update`` and every ``GET`` a ``read`` here.
ROUTE_OPERATIONS = {
    "GET": "read",
    "HEAD": "read",
    "LIST": "list",
    "POST": "update",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def route_families(samples: Mapping[str, list[Any]], mount_points: Iterable[str]) -> list[Metric]:
    """Vault's per-mount timers ``vault_route_<operation>_<mount>_`` (``secret/`` is
    ``secret_``, ``auth/token/`` is ``auth_token_``) from the request histogram:
    each route label belongs to the longest of ``mount_points`` it starts with."""
    mounts = sorted(set(mount_points) | {"sys/"}, key=len, reverse=True)
    durations = metrics.PREFIX + "http_request_duration_seconds"
    totals: dict[str, list[float]] = {}
    for position, suffix in enumerate(("_sum", "_count")):
        for sample in samples.get(durations + suffix, ()):
            route = sample.labels.get("route", "")
            operation = ROUTE_OPERATIONS.get(sample.labels.get("method", ""))
            if operation is None or route in OUTSIDE_CORE_ROUTES:
                continue
            mount = next((m for m in mounts if route.startswith(m)), None)
            if mount is None:
                continue
            name = f"vault_route_{operation}_{_UNSAFE.sub('_', mount)}"
            totals.setdefault(name, [0.0, 0.0])[position] += sample.value
    return [
        _summary_ms(name, f"Requests to the mount, by operation ({name})", seconds, count)
        for name, (seconds, count) in sorted(totals.items())
    ]


def core_families(samples: Mapping[str, list[Any]], cluster: str) -> list[Metric]:
    """The node-state gauges and the leadership metrics."""
    p = metrics.PREFIX
    out = [
        _single(f"vault_core_{name}", "gauge", doc, _total(samples, p + f"core_{name}"), {"cluster": cluster})
        for name, doc in (
            ("unsealed", "1 when the node is unsealed"),
            ("active", "1 when the node is the active node"),
            ("performance_standby", "1 when the node is a performance standby"),
        )
    ]
    out.append(
        _summary_ms(
            "vault_core_leadership_lost",
            "How long the node was active, for each leadership it lost",
            _total(samples, p + "core_leadership_held_seconds_total"),
            _total(samples, p + "core_leadership_lost_total"),
        )
    )
    out.append(
        _single(
            "vault_core_leadership_setup_failed",
            "counter",
            "Times the node took the lock but did not become active",
            _total(samples, p + "core_leadership_setup_failed_total"),
        )
    )
    out.append(
        _single(
            "vault_ha_rpc_client_forward_errors",
            "counter",
            "Requests a standby failed to forward to the active node",
            _total(samples, p + "ha_forward_errors_total"),
        )
    )
    for phase in ("request", "response"):
        out.append(
            _single(
                f"vault_audit_log_{phase}_failure",
                "counter",
                f"Audit {phase} entries no device could write",
                _total(samples, p + "audit_log_failures_total", phase=phase),
            )
        )
    return out


def storage_families(samples: Mapping[str, list[Any]]) -> list[Metric]:
    """``vault_barrier_*`` and ``vault_consul_*`` summaries from the operation histograms."""
    barrier = metrics.PREFIX + "barrier_operation_duration_seconds"
    storage = metrics.PREFIX + "storage_operation_duration_seconds"
    out = []
    for operation in ("get", "put", "list", "delete"):
        out.append(
            _histogram_summary(
                samples, barrier, f"vault_barrier_{operation}", f"Barrier {operation}", operation=operation
            )
        )
    for operation, vault_name in (
        ("get", "get"),
        ("put", "put"),
        ("list", "list"),
        ("delete", "delete"),
        ("txn", "transaction"),
    ):
        out.append(
            _histogram_summary(
                samples,
                storage,
                f"vault_consul_{vault_name}",
                f"Consul {vault_name}",
                backend="consul",
                operation=operation,
            )
        )
    return out


def token_families(samples: Mapping[str, list[Any]], usage: Mapping[str, Any] | None, cluster: str) -> list[Metric]:
    """``vault_token_creation`` (a counter on every node) and, on the active node
    once the usage gauges ran, ``vault_token_count*`` and ``vault_expire_num_leases``."""
    creation = _metric("vault_token_creation", "counter", "Tokens created")
    for sample in samples.get(metrics.PREFIX + "token_creations_total", ()):
        labels = {
            "auth_method": sample.labels.get("auth_method", ""),
            "cluster": cluster,
            "creation_ttl": sample.labels.get("creation_ttl", ""),
            "mount_point": sample.labels.get("mount_point", ""),
            "namespace": NAMESPACE,
            "token_type": sample.labels.get("token_type", ""),
        }
        creation.add_sample(creation.name, labels, sample.value)
    out = [creation]
    if usage is None:
        return out
    base = {"cluster": cluster, "namespace": NAMESPACE}
    out.append(_single("vault_token_count", "gauge", "Service tokens", usage["token_count"], base))
    for name, label, key in (
        ("vault_token_count_by_policy", "policy", "by_policy"),
        ("vault_token_count_by_ttl", "creation_ttl", "by_ttl"),
        ("vault_token_count_by_auth", "auth_method", "by_auth"),
    ):
        family = _metric(name, "gauge", f"Service tokens by {label}")
        for value, count in sorted(usage[key].items()):
            family.add_sample(name, {**base, label: value}, count)
        out.append(family)
    out.append(_single("vault_expire_num_leases", "gauge", "Leases (tokens with a TTL)", usage["num_leases"]))
    return out


def vault_families(
    families: Iterable[Metric], usage: Mapping[str, Any] | None, cluster: str, mount_points: Iterable[str] = ()
) -> list[Metric]:
    """Every Vault-named family derived from Strongroom's ``families``; ``mount_points``
    (``secret/``, ``auth/token/``) name the mounts of the ``vault_route_*`` timers."""
    samples = _samples(families)
    return [
        *core_families(samples, cluster),
        *request_families(samples, cluster),
        *route_families(samples, mount_points),
        *storage_families(samples),
        *token_families(samples, usage, cluster),
    ]


def exposition(families: Iterable[Metric]) -> bytes:
    """Prometheus text format with each family's name as given.

    ``prometheus_client.generate_latest`` writes a counter's ``TYPE`` line as
    ``<name>_total``; Vault's counters (``vault_audit_log_request_failure``)
    have no such suffix, and their ``TYPE`` line must name the sample."""
    lines = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape(family.documentation, help_text=True)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for sample in family.samples:
            labels = ",".join(f'{key}="{_escape(str(value))}"' for key, value in sorted(sample.labels.items()))
            head = f"{sample.name}{{{labels}}}" if labels else sample.name
            lines.append(f"{head} {floatToGoString(sample.value)}")
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _escape(text: str, help_text: bool = False) -> str:
    text = text.replace("\\", r"\\").replace("\n", r"\n")
    return text if help_text else text.replace('"', r"\"")


def cluster_label(cluster_name: str, cluster_id: str) -> str:
    """Vault's ``cluster`` label: the configured ``cluster_name``, else what Vault
    generates (``vault-cluster-`` and 8 hex digits), here taken from the
    cluster's id (stored in Consul with the seal configuration, so every node
    of the cluster and every restart agree); "" until the id is known (Vault,
    too, labels a sealed node's gauges ``cluster=""``)."""
    if cluster_name:
        return cluster_name
    digits = cluster_id.replace("-", "")[:8]
    return f"vault-cluster-{digits}" if digits else ""
