"""Every metric of issue 12 on a real node (two workers, real Consul), under our
names and Vault's, with the right types and plausible values after real traffic:
KV writes and reads, a token with a policy and a TTL, a userpass login, a
request forwarded by a standby, a seal and an unseal."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.procs import wait_until

USAGE = 'telemetry {\n  usage_gauge_period = "1s"\n}\n'

#: Our names and their types (the contract monitoring/ builds on).
OURS = {
    "strongroom_http_requests_total": "counter",
    "strongroom_http_request_duration_seconds": "histogram",
    "strongroom_storage_operation_duration_seconds": "histogram",
    "strongroom_barrier_operation_duration_seconds": "histogram",
    "strongroom_ha_forwarded_requests_total": "counter",
    "strongroom_ha_forward_errors_total": "counter",
    "strongroom_core_leadership_acquired_total": "counter",
    "strongroom_core_leadership_lost_total": "counter",
    "strongroom_core_leadership_setup_failed_total": "counter",
    "strongroom_core_seal_events_total": "counter",
    "strongroom_cache_requests_total": "counter",
    "strongroom_core_unsealed": "gauge",
    "strongroom_core_active": "gauge",
    "strongroom_core_performance_standby": "gauge",
    "strongroom_core_active_since_timestamp_seconds": "gauge",
    "strongroom_core_initialized": "gauge",
    "strongroom_ha_lock_held": "gauge",
    "strongroom_ha_lock_renewals_total": "counter",
    "strongroom_token_count": "gauge",
    "strongroom_token_count_by_policy": "gauge",
    "strongroom_token_count_by_ttl": "gauge",
    "strongroom_token_count_by_auth": "gauge",
    "strongroom_token_creations_total": "counter",
    "strongroom_expire_num_leases": "gauge",
    "strongroom_audit_log_failures_total": "counter",
    "strongroom_consul_errors_total": "counter",
    "strongroom_table_watch_answers_total": "counter",
    "strongroom_process_cpu_seconds_total": "gauge",
    "strongroom_process_resident_memory_bytes": "gauge",
    "strongroom_process_open_fds": "gauge",
    "strongroom_build_info": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
VAULTS = {
    "vault_core_unsealed": "gauge",
    "vault_core_active": "gauge",
    "vault_core_performance_standby": "gauge",
    "vault_core_handle_request": "summary",
    "vault_core_handle_login_request": "summary",
    "vault_core_response_status_code": "counter",
    "vault_core_leadership_lost": "summary",
    "vault_core_leadership_setup_failed": "counter",
    "vault_barrier_get": "summary",
    "vault_barrier_put": "summary",
    "vault_barrier_list": "summary",
    "vault_barrier_delete": "summary",
    "vault_consul_get": "summary",
    "vault_consul_put": "summary",
    "vault_consul_list": "summary",
    "vault_consul_delete": "summary",
    "vault_audit_log_request_failure": "counter",
    "vault_audit_log_response_failure": "counter",
    "vault_token_count": "gauge",
    "vault_token_count_by_policy": "gauge",
    "vault_token_count_by_ttl": "gauge",
    "vault_token_count_by_auth": "gauge",
    "vault_token_creation": "counter",
    "vault_expire_num_leases": "gauge",
    "vault_ha_rpc_client_forward_errors": "counter",
}


class Scrape:
    """One ``sys/metrics?format=prometheus`` answer: the ``# TYPE`` of each family
    as written (Vault's counters carry no ``_total``, which prometheus_client's
    parser splits off), and every sample."""

    def __init__(self, text: str):
        self.text = text
        self.types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        # The parser names a counter's samples ``<name>_total``; Vault's are written without it.
        self.samples = [
            s._replace(name=s.name[: -len("_total")])
            if s.name.startswith("vault_") and s.name.endswith("_total")
            else s
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        return sum(
            s.value for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def labelled(self, name: str) -> list[dict]:
        return [s.labels for s in self.samples if s.name == name]

    def has(self, name: str) -> bool:
        return any(s.name == name or s.name.startswith(name + "_") for s in self.samples)


def scrape(node, token: str | None) -> Scrape:
    headers = {"X-Vault-Token": token} if token else {}
    response = requests.get(node.url + "/v1/sys/metrics", params={"format": "prometheus"}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return Scrape(response.text)


@pytest.mark.slow
def test_every_metric_under_both_names_after_real_traffic(make_node):
    node = make_node(workers=2, extra=USAGE + "unsafe_allow_api_audit_creation = true\n")
    init = node.init(1, 1)
    token = init["root_token"]
    node.unseal(init["keys"])
    assert node.api("POST", "sys/mounts/secret", token=token, json={"type": "kv", "options": {"version": "2"}}).ok
    for i in range(6):
        assert node.api("POST", f"secret/data/app{i}", token=token, json={"data": {"v": i}}).status_code == 200
        assert node.api("GET", f"secret/data/app{i}", token=token).status_code == 200
    policy = 'path "secret/*" { capabilities = ["read"] }'
    assert node.api("PUT", "sys/policy/reader", token=token, json={"policy": policy}).ok
    created = node.api("POST", "auth/token/create", token=token, json={"policies": ["reader"], "ttl": "30m"})
    assert created.status_code == 200
    assert node.api("POST", "sys/auth/userpass", token=token, json={"type": "userpass"}).ok
    user = {"password": "pw-metrics", "token_policies": "reader", "token_ttl": "2h"}
    assert node.api("POST", "auth/userpass/users/ann", token=token, json=user).ok
    assert node.api("POST", "auth/userpass/login/ann", json={"password": "pw-metrics"}).status_code == 200
    # A seal and an unseal: the node loses its leadership and takes it again.
    assert node.api("PUT", "sys/seal", token=token).status_code == 204
    node.unseal(init["keys"])
    wait_until(lambda: node.api("GET", "sys/health").status_code == 200, 15, "active again after the unseal")

    def settled() -> Scrape | None:
        """Once every worker flushed its tally and the usage gauges ran on the new leadership."""
        got = scrape(node, token)
        done = (
            got.value("strongroom_token_count") >= 3
            and got.value("strongroom_http_requests_total", route="secret/data/:path", method="GET") == 6
            and got.value("strongroom_token_creations_total") == 2
        )
        return got if done else None

    got = wait_until(settled, 20, "traffic counted and usage gauges published")
    for name, kind in {**OURS, **VAULTS}.items():
        family = name[: -len("_total")] if kind == "counter" and name.startswith("strongroom_") else name
        if name == "process_cpu_seconds_total":
            family = name
        assert got.types.get(family) == kind or got.types.get(name) == kind, (name, kind, got.types.get(family))
        assert got.has(name), name

    # Ours: plausible values.
    assert got.value("strongroom_core_unsealed") == 1 and got.value("strongroom_core_active") == 1
    assert got.value("strongroom_core_initialized") == 1
    assert abs(got.value("strongroom_core_active_since_timestamp_seconds") - time.time()) < 120
    assert got.value("strongroom_core_seal_events_total", event="seal") == 1
    assert got.value("strongroom_core_seal_events_total", event="unseal") == 2
    assert got.value("strongroom_core_leadership_acquired_total") == 2
    assert got.value("strongroom_core_leadership_lost_total") == 1
    assert got.value("strongroom_ha_lock_renewals_total", result="ok") > 0
    assert got.value("strongroom_http_requests_total", route="secret/data/:path", method="POST", status="200") == 6
    assert got.value("strongroom_http_requests_total", route="auth/userpass/login/:username") == 1
    routes = {labels["route"] for labels in got.labelled("strongroom_http_requests_total")}
    assert not [route for route in routes if "app" in route or "ann" in route], routes
    assert got.value("strongroom_token_creations_total", auth_method="token", creation_ttl="1h") == 1
    assert got.value("strongroom_token_creations_total", auth_method="userpass", mount_point="auth/userpass/") == 1
    assert got.value("strongroom_token_creations_total", auth_method="userpass", creation_ttl="2h") == 1
    assert got.value("strongroom_token_count") == 3  # root, the created token, the login's
    assert got.value("strongroom_token_count_by_policy", policy="reader") == 2
    assert got.value("strongroom_token_count_by_ttl", creation_ttl="+Inf") == 1  # root never expires
    assert got.value("strongroom_token_count_by_ttl", creation_ttl="1h") == 1
    assert got.value("strongroom_token_count_by_auth", auth_method="userpass") == 1
    assert got.value("strongroom_expire_num_leases") == 2
    workers = {
        labels["pid"]
        for labels in got.labelled("strongroom_process_cpu_seconds_total")
        if labels["process"] == "worker"
    }
    assert len(workers) == 2
    assert got.value("process_resident_memory_bytes") == got.value("strongroom_process_resident_memory_bytes") > 0
    assert got.value("process_open_fds") == got.value("strongroom_process_open_fds") > 0
    assert 0 < got.value("process_start_time_seconds") <= time.time()
    assert got.value("strongroom_build_info") == 1

    # Vault's agree with ours.
    cluster = {labels["cluster"] for labels in got.labelled("vault_core_active")}
    assert len(cluster) == 1 and re.fullmatch(r"vault-cluster-[0-9a-f]{8}", cluster.pop())
    assert got.value("vault_core_unsealed") == 1 and got.value("vault_core_active") == 1
    outside = {"sys/health", "sys/seal-status", "sys/init", "sys/unseal", "sys/leader", "sys/metrics"}
    counts = [s for s in got.samples if s.name == "strongroom_http_request_duration_seconds_count"]
    handled = sum(s.value for s in counts if s.labels["route"] not in outside and "/login" not in s.labels["route"])
    assert got.value("vault_core_handle_request_count") == handled > 12
    assert got.value("vault_core_handle_login_request_count") == 1
    assert got.value("vault_core_response_status_code") == got.value("strongroom_http_requests_total")
    seconds = got.value("strongroom_barrier_operation_duration_seconds_sum", operation="get")
    assert got.value("vault_barrier_get_sum") == pytest.approx(seconds * 1000)
    assert got.value("vault_consul_get_count") == got.value(
        "strongroom_storage_operation_duration_seconds_count", backend="consul", operation="get"
    )
    assert got.value("vault_core_leadership_lost_count") == 1 and got.value("vault_core_leadership_lost_sum") > 0
    assert got.value("vault_token_count") == 3
    assert got.value("vault_route_read_secret__count") == 6 and got.value("vault_route_update_secret__count") == 6
    assert got.value("vault_route_update_auth_userpass__count") == 2  # the user's creation and the login
    assert got.value("vault_token_creation", auth_method="userpass", namespace="root", creation_ttl="2h") == 1
    assert got.value("vault_expire_num_leases") == 2
    assert re.search(r"^vault_audit_log_request_failure 0\.0$", got.text, re.M)  # Vault's spelling, no _total
    assert "quantile=" not in got.text  # not computable honestly from histogram buckets

    # An audit device that cannot write: the request is refused and the failure counted, under both names.
    logs = node.workdir / "audit-logs"
    logs.mkdir()
    device = {"type": "file", "options": {"file_path": str(logs / "audit.log")}}
    assert node.api("PUT", "sys/audit/file", token=token, json=device).status_code == 204
    shutil.rmtree(logs)
    assert node.api("GET", "secret/data/app0", token=token).status_code == 500

    def audit_failed() -> Scrape | None:
        got = scrape(node, token)
        return got if got.value("strongroom_audit_log_failures_total", phase="request") >= 1 else None

    got = wait_until(audit_failed, 10, "the audit failure counted")
    assert got.value("vault_audit_log_request_failure") == got.value(
        "strongroom_audit_log_failures_total", phase="request"
    )


@pytest.mark.slow
def test_a_standby_forwards_and_reports_no_usage(make_node):
    """The standby counts its forwards; only the active node publishes the usage gauges."""
    prefix = f"sr-fwd-{time.time_ns()}/"
    active = make_node(workers=1, prefix=prefix, extra=USAGE)
    init = active.init(1, 1)
    token = init["root_token"]
    active.unseal(init["keys"])
    wait_until(lambda: active.api("GET", "sys/health").status_code == 200, 15, "first node active")
    standby = make_node(workers=1, prefix=prefix, extra=USAGE)
    standby.unseal(init["keys"])
    wait_until(lambda: standby.api("GET", "sys/health").status_code == 473, 15, "second node a performance standby")
    assert standby.api("POST", "sys/mounts/fwd", token=token, json={"type": "kv"}).status_code == 204

    def forwarded() -> Scrape | None:
        got = scrape(standby, token)
        return got if got.value("strongroom_ha_forwarded_requests_total") >= 1 else None

    got = wait_until(forwarded, 10, "the standby counted its forward")
    assert got.value("strongroom_core_active") == 0 and got.value("strongroom_core_performance_standby") == 1
    assert got.value("strongroom_core_active_since_timestamp_seconds") == 0
    assert got.value("vault_core_performance_standby") == 1
    assert not got.has("strongroom_token_count") and not got.has("vault_token_count")
    assert got.value("vault_ha_rpc_client_forward_errors") == got.value("strongroom_ha_forward_errors_total") == 0
    both = {labels["cluster"] for labels in got.labelled("vault_core_active")}
    assert both == {labels["cluster"] for labels in scrape(active, token).labelled("vault_core_active")}


@pytest.mark.slow
def test_vault_names_can_be_turned_off_and_metrics_opened(make_node):
    """``telemetry { vault_metric_names = false }`` leaves our names alone; the listener's
    ``unauthenticated_metrics_access`` serves the scrape without a token."""
    node = make_node(workers=1, extra="telemetry {\n  vault_metric_names = false\n}\n")
    text = node.config_path.read_text().replace(
        "tls_disable = true", "tls_disable = true\n  unauthenticated_metrics_access = true"
    )
    node.stop()
    node.config_path.write_text(text)
    node.start()
    init = node.init(1, 1)
    node.unseal(init["keys"])
    got = scrape(node, None)
    assert got.value("strongroom_core_unsealed") == 1
    assert not [s for s in got.samples if s.name.startswith("vault_")]


@pytest.mark.slow
def test_a_dead_workers_process_series_vanish(make_node):
    """Per-process series are ``liveall``: gunicorn marks a dead worker, its series go,
    its replacement's come, and the node's sums follow the live processes."""
    node = make_node(workers=2)
    init = node.init(1, 1)
    token = init["root_token"]
    node.unseal(init["keys"])

    def worker_pids() -> set[str]:
        got = scrape(node, token)
        return {
            labels["pid"]
            for labels in got.labelled("strongroom_process_cpu_seconds_total")
            if labels["process"] == "worker"
        }

    def both_sampled() -> set[str] | None:
        pids = worker_pids()
        return pids if len(pids) == 2 else None

    before = wait_until(both_sampled, 10, "both workers sampled")
    victim = sorted(before)[0]
    os.kill(int(victim), signal.SIGKILL)

    def replaced() -> set[str] | None:
        pids = worker_pids()
        return pids if len(pids) == 2 and victim not in pids else None

    after = wait_until(replaced, 20, "the dead worker's series gone and its replacement's there")
    assert len(after & before) == 1
    got = scrape(node, token)
    assert got.value("process_open_fds") == got.value("strongroom_process_open_fds")
