"""sys/health codes and parameters exactly as Vault documents them."""

import pytest


def test_uninitialised_is_501(fresh):
    result = fresh.client.simulate_get("/v1/sys/health")
    assert result.status_code == 501
    assert result.json["initialized"] is False and result.json["sealed"] is True


def test_sealed_is_503_and_custom_code(node):
    sealed = node.client.simulate_get("/v1/sys/health")
    assert sealed.status_code == 503
    # As Vault (and OpenBao 2.7.2): a sealed node reports itself a standby.
    assert sealed.json["sealed"] is True and sealed.json["standby"] is True
    assert node.client.simulate_get("/v1/sys/health", params={"sealedcode": "200"}).status_code == 200


def test_active_is_200_with_vault_fields(unsealed):
    result = unsealed.client.simulate_get("/v1/sys/health")
    assert result.status_code == 200
    for field in (
        "initialized",
        "sealed",
        "standby",
        "performance_standby",
        "replication_performance_mode",
        "replication_dr_mode",
        "server_time_utc",
        "version",
        "cluster_name",
        "cluster_id",
    ):
        assert field in result.json
    assert result.json["standby"] is False and result.json["sealed"] is False
    # No cluster_name configured: Vault's generated name, from the stored cluster id, so every node
    # and the metrics' cluster label agree.
    cluster_id = result.json["cluster_id"]
    assert result.json["cluster_name"] == "vault-cluster-" + cluster_id.replace("-", "")[:8]
    assert unsealed.client.simulate_get("/v1/sys/seal-status").json["cluster_name"] == result.json["cluster_name"]


@pytest.mark.parametrize(
    "params,status",
    [
        ({"activecode": "299"}, 299),
        ({"standbyok": "true"}, 200),
        ({"perfstandbyok": ""}, 200),
    ],
)
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


class _Req:
    def __init__(self, params: dict):
        self.params = params


STANDBY = {"initialized": True, "sealed": False, "standby": True, "performance_standby": False}
PERF = {"initialized": True, "sealed": False, "standby": True, "performance_standby": True}


@pytest.mark.parametrize("value", ["1", "t", "T", "TRUE", "true", "True"])
def test_standbyok_reads_every_true_spelling_of_go_parsebool(value):
    from strongroom.api.sys_health import health_status

    assert health_status(STANDBY, _Req({"standbyok": value})) == 200
    assert health_status(PERF, _Req({"perfstandbyok": [value, "false"]})) == 200  # the first value counts


@pytest.mark.parametrize("value", ["0", "f", "F", "FALSE", "false", "False", ""])
def test_standbyok_false_or_bare_keeps_the_standby_code(value):
    """A bare ``?standbyok`` is false: Vault reads it with parseutil.ParseBool, which
    decodes "" as false (it used to be taken as true here)."""
    from strongroom.api.sys_health import health_status

    assert health_status(STANDBY, _Req({"standbyok": value})) == 429
    assert health_status(PERF, _Req({"perfstandbyok": value})) == 473


@pytest.mark.parametrize("name", ["standbyok", "perfstandbyok"])
@pytest.mark.parametrize("value", ["yes", "on", "junk", "tRUE", " true", "2"])
def test_a_flag_go_cannot_parse_is_400_on_every_node(unsealed, name, value):
    # As OpenBao 2.7.2 answers ?standbyok=yes (its log: strconv.ParseBool ... invalid syntax).
    result = unsealed.client.simulate_get("/v1/sys/health", params={name: value})
    assert result.status_code == 400
    assert result.json == {"errors": [f"bad value for {name} parameter: {value}"]}
    assert unsealed.client.simulate_head("/v1/sys/health", params={name: value}).status_code == 400


def test_leader_without_ha(unsealed):
    assert unsealed.client.simulate_get("/v1/sys/leader").json["ha_enabled"] is False


CODE_PARAMETERS = (
    "activecode",
    "standbycode",
    "drsecondarycode",
    "haunhealthycode",
    "performancestandbycode",
    "removedcode",
    "sealedcode",
    "uninitcode",
)


@pytest.mark.parametrize("name", CODE_PARAMETERS)
@pytest.mark.parametrize("value", ["100", "101", "199", "0", "-1", "600", "999", "1000", "9" * 5000])
def test_a_code_that_is_no_final_status_is_400_never_sent(unsealed, name, value):
    """Vault sends ``100 Continue`` as the answer to ``activecode=100`` (HAProxy turns it
    into a 502) and drops the connection for 1000; every code parameter is checked."""
    result = unsealed.client.simulate_get("/v1/sys/health", params={name: value})
    assert result.status_code == 400
    assert result.json == {"errors": [f"invalid {name} code: {value}: must be a status code from 200 to 599"]}
    assert unsealed.client.simulate_head("/v1/sys/health", params={name: value}).status_code == 400


@pytest.mark.parametrize("name", CODE_PARAMETERS)
@pytest.mark.parametrize("value", ["abc", "", " 200", "200 ", "2e2", "200.0", "0x100", "\u0662\u0660\u0660", "NaN"])
def test_a_code_that_is_not_an_integer_is_400(node, name, value):
    """Go's ``strconv.Atoi``: no spaces, exponents, fractions, hex or non-ASCII digits."""
    result = node.client.simulate_get("/v1/sys/health", params={name: value})
    assert result.status_code == 400
    assert result.json == {"errors": [f"unable to parse {name} code: {value}"]}
    assert node.client.simulate_head("/v1/sys/health", params={name: value}).status_code == 400


@pytest.mark.parametrize(
    "params, status",
    [
        ({"activecode": "200"}, 200),
        ({"activecode": "+204"}, 204),
        ({"activecode": "599"}, 599),
        ({"perfstandbyok": "true", "standbycode": "200"}, 200),  # HAProxy's read-backend check
        ({"standbycode": "200", "sealedcode": "500", "uninitcode": "500"}, 200),
    ],
)
def test_valid_codes_still_work(unsealed, params, status):
    assert unsealed.client.simulate_get("/v1/sys/health", params=params).status_code == status
    assert unsealed.client.simulate_head("/v1/sys/health", params=params).status_code == status


def test_sealed_node_answers_a_valid_custom_code_and_refuses_a_bad_one(node):
    assert node.client.simulate_get("/v1/sys/health", params={"sealedcode": "299"}).status_code == 299
    assert node.client.simulate_get("/v1/sys/health", params={"sealedcode": "100"}).status_code == 400
