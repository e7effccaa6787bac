"""sys/health codes and parameters exactly as Vault documents them."""

import pytest


def test_uninitialised_is_501(fresh):
    result = fresh.client.simulate_get("/v1/sys/health")
    assert result.status_code == 501
    assert result.json["initialized"] is False and result.json["sealed"] is True


def test_sealed_is_503_and_custom_code(node):
    assert node.client.simulate_get("/v1/sys/health").status_code == 503
    assert node.client.simulate_get("/v1/sys/health", params={"sealedcode": "200"}).status_code == 200


def test_active_is_200_with_vault_fields(unsealed):
    result = unsealed.client.simulate_get("/v1/sys/health")
    assert result.status_code == 200
    for field in ("initialized", "sealed", "standby", "performance_standby", "replication_performance_mode",
                  "replication_dr_mode", "server_time_utc", "version", "cluster_name", "cluster_id"):
        assert field in result.json
    assert result.json["standby"] is False and result.json["sealed"] is False


@pytest.mark.parametrize("params,status", [
    ({"activecode": "299"}, 299),
    ({"standbyok": "true"}, 200),
    ({"perfstandbyok": ""}, 200),
])
def test_active_codes(unsealed, params, status):
    assert unsealed.client.simulate_get("/v1/sys/health", params=params).status_code == status


def test_head_has_status_and_no_body(node):
    result = node.client.simulate_head("/v1/sys/health")
    assert result.status_code == 503 and result.content == b""
    node.unseal()
    assert node.client.simulate_head("/v1/sys/health").status_code == 200


def test_bad_code_is_400(unsealed):
    result = unsealed.client.simulate_get("/v1/sys/health", params={"activecode": "abc"})
    assert result.status_code == 400 and result.json["errors"]


def test_standby_codes_follow_vault():
    from strongroom.api.sys_health import health_status

    class Req:
        def __init__(self, params):
            self.params = params

    standby = {"initialized": True, "sealed": False, "standby": True, "performance_standby": False}
    perf = {"initialized": True, "sealed": False, "standby": True, "performance_standby": True}
    assert health_status(standby, Req({})) == 429
    assert health_status(standby, Req({"standbyok": "true"})) == 200
    assert health_status(standby, Req({"standbycode": "299"})) == 299
    assert health_status(perf, Req({})) == 473
    assert health_status(perf, Req({"perfstandbyok": "true"})) == 200
    assert health_status(perf, Req({"performancestandbycode": "298"})) == 298


def test_leader_without_ha(unsealed):
    assert unsealed.client.simulate_get("/v1/sys/leader").json["ha_enabled"] is False
