"""Vault's metric names derived from ours (``strongroom.metrics_vault``), Vault's
TTL buckets, the usage snapshot and the node's process figures: the pure parts,
on registries of their own."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from strongroom import metrics, metrics_process, metrics_usage, metrics_vault
from strongroom.api.forward import forward_error_reason
from strongroom.sdk.framework import route_template
from strongroom.storage.consul_errors import error_for_status, transport_error_kind

P = metrics.PREFIX


def test_ttl_buckets_are_vaults():
    """helper/metricsutil.TTLBucket: the first bound the TTL does not exceed, +Inf past 30 days."""
    cases = {
        0: "1m",
        60: "1m",
        61: "10m",
        600: "10m",
        1200: "20m",
        1800: "1h",
        3600: "1h",
        7200: "2h",
        7201: "1d",
        86400: "1d",
        2 * 86400: "2d",
        7 * 86400: "7d",
        768 * 3600: "+Inf",  # Vault's default max TTL, 32 days
        30 * 86400: "30d",
        30 * 86400 + 1: "+Inf",
    }
    assert {ttl: metrics.ttl_bucket(ttl) for ttl in cases} == cases


@pytest.mark.parametrize(
    ("pattern", "template"),
    [
        ("(?P<path>.*)", ":path"),
        ("data/(?P<path>.*)", "data/:path"),
        ("mounts/?", "mounts"),
        ("mounts/(?P<path>.*)/tune", "mounts/:path/tune"),
        (r"keys/(?P<name>\w(([\w\-.]+)?\w)?)/rotate", "keys/:name/rotate"),
        ("audit-hash(?:/(?P<path>.*))?", "audit-hash[/:path]"),
        (
            r"export/(?P<export_type>[^/]+)/(?P<name>\w(([\w\-.]+)?\w)?)(/(?P<version>[^/]+))?",
            "export/:export_type/:name[/:version]",
        ),
        ("random(/(?P<source>default|platform|seal|all))?(/(?P<urlbytes>[^/]+))?", "random[/:source][/:urlbytes]"),
        ("role/(?P<role>[^/]+)/secret-id/?", "role/:role/secret-id"),
        ("capabilities-self", "capabilities-self"),
    ],
)
def test_route_templates_name_the_parameters(pattern, template):
    assert route_template(pattern) == template


def our_families():
    """Our request, storage and core series on a registry of their own, with known values."""
    registry = CollectorRegistry()
    requests_total = Counter(P + "http_requests_total", "r", ["route", "method", "status"], registry=registry)
    durations = Histogram(
        P + "http_request_duration_seconds",
        "d",
        ["route", "method"],
        buckets=metrics.LATENCY_BUCKETS,
        registry=registry,
    )
    for route, method, status, seconds in [
        ("secret/data/:path", "GET", "200", 0.002),
        ("secret/data/:path", "GET", "200", 0.004),
        ("secret/data/:path", "POST", "204", 0.010),
        ("auth/userpass/login/:username", "POST", "200", 0.100),
        ("auth/approle/login", "POST", "400", 0.050),
        ("sys/health", "GET", "200", 0.001),  # served outside Vault's core
        ("sys/metrics", "GET", "200", 0.001),
        ("unmatched", "GET", "404", 0.001),
        ("sys/mounts", "GET", "4xx", 0.001),
    ]:
        requests_total.labels(route, method, status).inc()
        durations.labels(route, method).observe(seconds)
    barrier = Histogram(P + "barrier_operation_duration_seconds", "b", ["operation"], registry=registry)
    barrier.labels("get").observe(0.25)
    barrier.labels("get").observe(0.5)
    barrier.labels("get_prefix").observe(1.0)
    storage = Histogram(P + "storage_operation_duration_seconds", "s", ["backend", "operation"], registry=registry)
    storage.labels("consul", "txn").observe(0.003)
    storage.labels("inmem", "get").observe(9.0)  # not Consul: no vault_consul_*
    Counter(P + "core_leadership_lost_total", "l", registry=registry).inc(2)
    Counter(P + "core_leadership_held_seconds_total", "h", registry=registry).inc(30.5)
    Counter(P + "audit_log_failures_total", "a", ["phase"], registry=registry).labels("response").inc(3)
    Counter(P + "ha_forward_errors_total", "f", ["reason"], registry=registry).labels("timeout").inc(4)
    Gauge(P + "core_active", "a", registry=registry).set(1)
    creations = Counter(
        P + "token_creations_total",
        "t",
        ["auth_method", "mount_point", "token_type", "creation_ttl"],
        registry=registry,
    )
    creations.labels("userpass", "auth/userpass/", "service", "1h").inc(5)
    return list(registry.collect())


def by_name(families):
    return {family.name: family for family in families}


def value(family, **labels) -> float:
    return sum(s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items()))


def sample(family, suffix: str) -> float:
    return sum(s.value for s in family.samples if s.name == family.name + suffix)


def test_requests_become_vaults_handle_request_summaries_in_milliseconds():
    vault = by_name(metrics_vault.vault_families(our_families(), None, "vault-cluster-0a1b2c3d"))
    handle = vault["vault_core_handle_request"]
    assert handle.type == "summary"
    # Logical requests only: not the logins, not sys/health or sys/metrics; unmatched ones count.
    assert sample(handle, "_count") == 5
    assert sample(handle, "_sum") == pytest.approx((0.002 + 0.004 + 0.010 + 0.001 + 0.001) * 1000)
    logins = vault["vault_core_handle_login_request"]
    assert sample(logins, "_count") == 2 and sample(logins, "_sum") == pytest.approx(150.0)
    codes = vault["vault_core_response_status_code"]
    assert codes.type == "counter"
    assert value(codes, code="200", type="2xx", cluster="vault-cluster-0a1b2c3d") == 5
    assert value(codes, code="4xx", type="4xx") == 1
    assert value(codes) == 9


def test_route_timers_per_mount_and_operation():
    vault = by_name(
        metrics_vault.vault_families(our_families(), None, "c1", ["secret/", "auth/userpass/", "auth/approle/"])
    )
    read = vault["vault_route_read_secret_"]
    assert read.type == "summary" and sample(read, "_count") == 2 and sample(read, "_sum") == pytest.approx(6.0)
    assert sample(vault["vault_route_update_secret_"], "_count") == 1
    assert sample(vault["vault_route_update_auth_userpass_"], "_count") == 1
    assert sample(vault["vault_route_read_sys_"], "_count") == 1  # sys/mounts; sys/health is outside the core
    assert not [name for name in vault if name.startswith("vault_route_") and "unmatched" in name]


def test_core_storage_and_token_families():
    vault = by_name(metrics_vault.vault_families(our_families(), None, "c1"))
    assert value(vault["vault_core_active"], cluster="c1") == 1
    assert value(vault["vault_core_unsealed"], cluster="c1") == 0
    lost = vault["vault_core_leadership_lost"]
    assert sample(lost, "_count") == 2 and sample(lost, "_sum") == pytest.approx(30500.0)
    assert value(vault["vault_audit_log_response_failure"]) == 3
    assert value(vault["vault_audit_log_request_failure"]) == 0
    assert value(vault["vault_ha_rpc_client_forward_errors"]) == 4
    get = vault["vault_barrier_get"]
    assert sample(get, "_count") == 2 and sample(get, "_sum") == pytest.approx(750.0)
    assert sample(vault["vault_consul_transaction"], "_count") == 1
    assert sample(vault["vault_consul_get"], "_count") == 0  # the inmem backend's get is not Consul's
    creation = vault["vault_token_creation"]
    assert [s.labels for s in creation.samples] == [
        {
            "auth_method": "userpass",
            "cluster": "c1",
            "creation_ttl": "1h",
            "mount_point": "auth/userpass/",
            "namespace": "root",
            "token_type": "service",
        }
    ]
    # No usage snapshot (not the active node): no token counts, as on Vault's standbys.
    assert "vault_token_count" not in vault and "vault_expire_num_leases" not in vault


def test_usage_snapshot_under_both_names():
    snapshot = {
        "token_count": 3,
        "num_leases": 2,
        "by_policy": {"default": 2, "root": 1},
        "by_ttl": {"1h": 2, "+Inf": 1},
        "by_auth": {"token": 2, "userpass": 1},
    }
    ours = by_name(metrics_usage.families(snapshot))
    assert value(ours[P + "token_count"]) == 3 and value(ours[P + "expire_num_leases"]) == 2
    assert value(ours[P + "token_count_by_ttl"], creation_ttl="+Inf") == 1
    vault = by_name(metrics_vault.vault_families([], snapshot, "c1"))
    assert value(vault["vault_token_count_by_policy"], policy="default", namespace="root", cluster="c1") == 2
    assert value(vault["vault_token_count_by_auth"], auth_method="userpass") == 1
    assert value(vault["vault_expire_num_leases"]) == 2
    assert list(metrics_usage.families(None)) == []


def test_exposition_writes_vaults_counters_without_total():
    families = metrics_vault.vault_families(our_families(), None, "c1")
    text = metrics_vault.exposition(families).decode()
    assert "# TYPE vault_audit_log_response_failure counter\nvault_audit_log_response_failure 3.0\n" in text
    assert "# TYPE vault_core_handle_request summary\n" in text
    assert "_total" not in text and "quantile" not in text
    parsed = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert parsed["vault_core_handle_request"] == "summary" and parsed["vault_core_active"] == "gauge"


def test_summarize_counts_tokens_as_vault_does():
    tokens = [
        SimpleNamespace(policies=["root"], path="auth/token/root", ttl=0, expire_at=None),
        SimpleNamespace(policies=["default", "reader"], path="auth/token/create", ttl=1800, expire_at=time.time() + 9),
        SimpleNamespace(policies=["default"], path="auth/userpass/login/ann", ttl=7200, expire_at=time.time() + 9),
    ]

    def method_of(path: str) -> str:
        return path.split("/")[1]

    snapshot = metrics_usage.summarize(tokens, method_of, max_cardinality=500)
    assert snapshot == {
        "token_count": 3,
        "num_leases": 2,
        "by_policy": {"root": 1, "default": 2, "reader": 1},
        "by_ttl": {"+Inf": 1, "1h": 1, "2h": 1},
        "by_auth": {"token": 2, "userpass": 1},
    }


def test_gauge_cardinality_keeps_the_largest_values():
    counts = {f"p{i}": i for i in range(10)}
    assert metrics_usage.bounded(counts, 3) == {"p9": 9, "p8": 8, "p7": 7}
    assert metrics_usage.bounded({"b": 1, "a": 1, "c": 2}, 2) == {"c": 2, "a": 1}
    assert metrics_usage.bounded(counts, 10) == counts


def test_publish_and_withdraw_the_snapshot(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics_usage.publish({"token_count": 1})
    assert metrics_usage.current() == {"token_count": 1}
    assert [p.name for p in tmp_path.iterdir()] == [metrics_usage.SNAPSHOT_FILE]
    metrics_usage.publish(None)
    assert metrics_usage.current() is None and not list(tmp_path.iterdir())


def test_cluster_label_as_vault_generates_it():
    assert metrics_vault.cluster_label("prod", "whatever") == "prod"
    assert metrics_vault.cluster_label("", "52a275dd-1c2b-4e5f-8a9b-0c1d2e3f4a5b") == "vault-cluster-52a275dd"
    assert metrics_vault.cluster_label("", "") == ""


def test_login_routes():
    assert metrics_vault.is_login_route("auth/userpass/login/:username")
    assert metrics_vault.is_login_route("auth/approle/login")
    assert not metrics_vault.is_login_route("auth/token/lookup-self")
    assert not metrics_vault.is_login_route("login/data/:path")  # a KV mount named login


def test_this_process_reads_itself():
    figures = metrics_process.read_self()
    assert figures["rss"] > 1e6 and figures["cpu"] > 0 and figures["open_fds"] >= 3
    assert figures["max_fds"] >= figures["open_fds"]
    assert abs(figures["start_time"] - time.time()) < 24 * 3600 * 365


def test_node_process_families_sum_live_processes():
    registry = CollectorRegistry()
    gauges = {
        name: Gauge(P + name, "x", ["process", "pid"], registry=registry)
        for name in (
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        )
    }
    for pid, process, figures in [("1", "core", (1.5, 100, 10, 1024, 50)), ("2", "worker", (2.5, 300, 20, 4096, 40))]:
        for gauge, number in zip(gauges.values(), figures, strict=True):
            gauge.labels(process, pid).set(number)
    node = by_name(metrics_process.node_families(registry.collect()))
    assert node["process_cpu_seconds"].type == "counter" and value(node["process_cpu_seconds"]) == 4.0
    assert value(node["process_resident_memory_bytes"]) == 400
    assert value(node["process_open_fds"]) == 30
    assert value(node["process_max_fds"]) == 4096
    assert value(node["process_start_time_seconds"]) == 40


def test_error_kinds_are_bounded():
    assert forward_error_reason(requests.ConnectTimeout()) == "timeout"
    assert forward_error_reason(requests.ConnectionError()) == "connection"
    assert forward_error_reason(requests.exceptions.SSLError()) == "tls"
    assert forward_error_reason(requests.RequestException()) == "other"
    assert transport_error_kind(TimeoutError()) == "timeout"
    assert transport_error_kind(ConnectionRefusedError()) == "connection"
    assert transport_error_kind(ValueError()) == "other"


def test_consul_errors_are_counted_by_kind():
    from prometheus_client import REGISTRY

    def count(kind: str) -> float:
        return REGISTRY.get_sample_value(P + "consul_errors_total", {"kind": kind}) or 0.0

    before = {kind: count(kind) for kind in ("http_5xx", "http_4xx")}
    error_for_status(503, "No cluster leader", "a read")
    error_for_status(413, "too large", "a transaction")
    error_for_status(403, "", "a read")
    assert count("http_5xx") - before["http_5xx"] == 1
    assert count("http_4xx") - before["http_4xx"] == 2
    metrics.count_consul_error("made-up")  # an unknown kind is "other", never a new series
    assert REGISTRY.get_sample_value(P + "consul_errors_total", {"kind": "made-up"}) is None


def test_render_with_vault_names_is_one_exposition():
    text = metrics.render(vault_names=True, cluster="c1").decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert types["vault_core_handle_request"] == "summary" and types["vault_consul_get"] == "summary"
    assert P + "http_requests_total" in types
    assert "vault_" not in metrics.render().decode()


def test_vault_metric_names_setting():
    """``telemetry { vault_metric_names = false }`` (Strongroom's own key, default true)."""
    from strongroom.config import ConfigError, from_json, loads, to_json

    base = 'storage "consul" {}\nlistener "tcp" {\n  tls_disable = true\n}\n'
    assert loads(base).telemetry.vault_metric_names is True
    off = loads(base + "telemetry {\n  vault_metric_names = false\n}\n")
    assert off.telemetry.vault_metric_names is False
    assert from_json(to_json(off)).telemetry.vault_metric_names is False  # as the workers receive it
    with pytest.raises(ConfigError) as info:
        loads(base + 'telemetry {\n  vault_metric_names = "maybe"\n}\n')
    assert "vault_metric_names" in str(info.value)
