"""``sys/metrics?format=prometheus``: token-protected, aggregated over workers.

https://developer.hashicorp.com/vault/api-docs/system/metrics
"""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.compat.support import read_kv2
from tests.helpers.procs import wait_until


def _scrape(url: str, token: str | None) -> requests.Response:
    headers = {"X-Vault-Token": token} if token else {}
    return requests.get(f"{url}/v1/sys/metrics", params={"format": "prometheus"}, headers=headers, timeout=10)


def _samples(text: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _value(samples, name: str, **labels) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_with_token(compat_node, vault, unique):
    mount = unique("metered")
    vault.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    vault.secrets.kv.v2.create_or_update_secret("m", secret={"a": "b"}, mount_point=mount)
    reads = 12  # spread over both workers; the scrape must add them up
    for _ in range(reads):
        read_kv2(vault, "m", mount)

    route = f"{mount}/data/:path"  # the mount point and the path-table entry's template

    def counted():
        """A scrape once every worker has written its tally (once a second)."""
        response = _scrape(compat_node.url, compat_node.root_token)
        samples = _samples(response.text)
        if (
            _value(samples, "strongroom_http_requests_total", route=route, method="GET", status="200") == reads
            and _value(samples, "strongroom_http_request_duration_seconds_count", route=route, method="GET") == reads
        ):
            return response, samples
        return None

    response, samples = wait_until(counted, 10, f"{reads} reads counted in sys/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert _value(samples, "strongroom_core_unsealed") == 1
    assert _value(samples, "strongroom_core_active") == 1
    assert _value(samples, "strongroom_core_performance_standby") == 0
    assert _value(samples, "strongroom_barrier_operation_duration_seconds_count") > 0
    # Route labels are templates: the secret's own path never appears.
    assert f"{mount}/data/m" not in response.text


def test_metrics_cover_storage_operations(compat_node, vault, unique):
    """DESIGN.md: one latency histogram per storage operation (labelled by backend)."""
    mount = unique("stored")
    vault.sys.enable_secrets_engine("kv", path=mount)
    vault.secrets.kv.v1.create_or_update_secret("s", secret={"a": "b"}, mount_point=mount)
    vault.secrets.kv.v1.read_secret("s", mount_point=mount)

    def gets_counted():
        samples = _samples(_scrape(compat_node.url, compat_node.root_token).text)
        get = _value(samples, "strongroom_storage_operation_duration_seconds_count", backend="consul", operation="get")
        return samples if get > 0 else None

    samples = wait_until(gets_counted, 10, "storage gets counted in sys/metrics")
    assert _value(samples, "strongroom_storage_operation_duration_seconds_count", backend="consul") > _value(
        samples, "strongroom_storage_operation_duration_seconds_count", backend="consul", operation="get"
    )


def test_metrics_need_a_token_with_read(compat_node, vault):
    anonymous = _scrape(compat_node.url, None)
    assert anonymous.status_code == 403 and anonymous.json()["errors"]
    token = vault.auth.token.create(policies=["default"], ttl="5m")["auth"]["client_token"]
    limited = _scrape(compat_node.url, token)
    assert limited.status_code == 403 and limited.json()["errors"]


def test_dev_node_metrics_report_it_unsealed(strongroom_dev_server):
    """``strongroom server -dev`` starts unsealed and active; its gauges must say so."""
    response = _scrape(strongroom_dev_server.url, strongroom_dev_server.root_token)
    assert response.status_code == 200
    assert _value(_samples(response.text), "strongroom_core_unsealed") == 1
