"""Grafana dashboards as code (issue 12, item 3): the committed JSON is what the
generator writes, every panel is complete and every query is valid PromQL for
a real Prometheus; the provisioning files are what Grafana reads; the
community Vault dashboard's queries are extracted the same way.

Grafana itself cannot be installed here: the JSON is checked for the fields
Grafana and the live-data test read, and each query is parsed by a real
Prometheus (started once, empty configuration, on a free loopback port).
Whether the queries return data on a live cluster is the live test's job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring.grafana import dashboards, queries, vault_community
from tests.helpers.procs.prometheus import PrometheusProcess, PrometheusQueryError

GRAFANA = Path(dashboards.__file__).parent
# A Grafana variable ($name, ${name}); label_replace's $1 is not one.
UNSUBSTITUTED = re.compile(r"\$\{?[A-Za-z_]")
UIDS = {"strongroom-overview", "strongroom-api", "strongroom-storage", "strongroom-frontdoor"}


def committed() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(dashboards.OUTPUT_DIR.glob("*.json"))}


def every_dashboard() -> list[dict[str, Any]]:
    return list(committed().values())


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    config = tmp_path_factory.mktemp("prometheus") / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    with PrometheusProcess(config) as prom:
        yield prom


def invalid_queries(prom: PrometheusProcess, found: list[tuple[str, str]]) -> list[str]:
    """The queries Prometheus refuses, with its reason."""
    refused = []
    for title, expr in found:
        try:
            prom.api("query", query=expr)
        except PrometheusQueryError as exc:
            refused.append(f"{title}: {expr}: {exc}")
    return refused


# -- generated JSON ---------------------------------------------------------


def test_committed_json_is_what_the_generator_writes():
    on_disk = {path.name: path.read_text() for path in dashboards.OUTPUT_DIR.glob("*.json")}
    assert on_disk == dashboards.render(), "run `.venv/bin/python -m monitoring.grafana.dashboards` and commit the JSON"


def test_uids_are_the_stable_ones_and_name_the_files():
    found = {name: board["uid"] for name, board in committed().items()}
    assert set(found.values()) == UIDS
    assert all(name == f"{uid}.json" for name, uid in found.items())


def test_each_dashboard_has_a_datasource_and_a_node_variable():
    for board in every_dashboard():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        node = variables["node"]
        assert node["type"] == "query"
        assert node["query"] == "label_values(strongroom_core_unsealed, instance)"
        assert node["multi"] and node["includeAll"]
        assert node["datasource"]["uid"] == "${datasource}"


def test_every_panel_has_unit_description_and_a_query_on_the_datasource_variable():
    for board in every_dashboard():
        panels = list(queries.leaf_panels(board))
        assert panels, board["uid"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{board['uid']}: duplicate panel ids"
        for panel in panels:
            where = f"{board['uid']} / {panel.get('title')!r}"
            assert panel.get("title"), where
            assert panel.get("description", "").strip(), f"{where}: no description"
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            targets = panel.get("targets", [])
            assert any(t.get("expr", "").strip() for t in targets), f"{where}: no query"
            for target in targets:
                assert target["datasource"]["uid"] == "${datasource}", where
            assert len({t["refId"] for t in targets}) == len(targets), f"{where}: refIds not unique"


def test_every_strongroom_series_is_filtered_by_the_node_variable():
    selector = re.compile(r"(?<![\"\w])((?:strongroom|process)_\w+)(\{[^}]*\})?")
    for board in every_dashboard():
        for panel in queries.leaf_panels(board):
            for target in panel["targets"]:
                for name, matchers in selector.findall(target["expr"]):
                    assert 'instance=~"$node"' in matchers, f"{board['uid']} / {panel['title']}: {name}{matchers}"


def _exprs(uid: str) -> str:
    return "\n".join(expr for _, expr in queries.panel_queries(committed()[f"{uid}.json"]))


def test_dashboards_show_what_issue_12_asks_for():
    overview = _exprs("strongroom-overview")
    for needle in (
        "strongroom_core_active",
        "strongroom_core_performance_standby",
        "strongroom_core_unsealed",
        "strongroom_core_active_since_timestamp_seconds",
        "strongroom_core_leadership_acquired_total",
        "haproxy_server_status",
    ):
        assert needle in overview
    api = _exprs("strongroom-api")
    for needle in (
        "histogram_quantile(0.5, sum by (route, le) (rate(strongroom_http_request_duration_seconds_bucket",
        "histogram_quantile(0.99, sum by (route, le) (rate(strongroom_http_request_duration_seconds_bucket",
        'status=~"5.*"',
        'status=~"4.*"',
        "strongroom_ha_forwarded_requests_total",
        "topk(10, sum by (route, method)",
    ):
        assert needle in api
    storage = _exprs("strongroom-storage")
    for needle in (
        'strongroom_storage_operation_duration_seconds_bucket{backend="consul"',
        'result="hit"',
        'kind=~"txn_rejected|write_conflict"',
        "consul_raft_commitTime",
    ):
        assert needle in storage
    front_door = _exprs("strongroom-frontdoor")
    for needle in (
        "haproxy_backend_active_servers",
        "haproxy_backend_current_sessions",
        'code="5xx"',
        "haproxy_backend_retry_warnings_total",
        "haproxy_backend_current_queue",
    ):
        assert needle in front_door


def test_every_query_is_valid_promql_once_variables_are_substituted(prometheus):
    found = [query for board in every_dashboard() for query in queries.panel_queries(board)]
    assert len(found) > 60
    assert not [expr for _, expr in found if UNSUBSTITUTED.search(expr)], "a variable was left unsubstituted"
    assert invalid_queries(prometheus, found) == []


def test_the_promql_check_catches_a_broken_query(prometheus):
    broken = [
        ("unbalanced", "sum(rate(strongroom_http_requests_total[1m])"),
        ("grafana variable", "rate(strongroom_http_requests_total[$__rate_interval])"),
    ]
    assert [line.split(":")[0] for line in invalid_queries(prometheus, broken)] == ["unbalanced", "grafana variable"]


# -- variable substitution ----------------------------------------------------


def test_substitution_covers_grafanas_variable_forms():
    board = {
        "templating": {
            "list": [
                {"name": "node", "includeAll": True, "allValue": ".*"},
                {"name": "job", "current": {"value": "strongroom"}},
                {"name": "picked", "current": {"value": ["$__all"]}},
            ]
        }
    }
    values = queries.variable_values(board)
    assert queries.substitute('x{instance=~"${node:regex}"}[$__rate_interval]', values) == 'x{instance=~".*"}[1m]'
    assert queries.substitute('x{instance=~"$node", job="[[job]]"}[$__range]', values) == (
        'x{instance=~".*", job="strongroom"}[1h]'
    )
    assert queries.substitute('x{a=~"$picked"}', values) == 'x{a=~".*"}'
    assert (
        queries.substitute('label_replace(x, "c", "$1", "s", "(.)")', values)
        == 'label_replace(x, "c", "$1", "s", "(.)")'
    )
    assert queries.variable_values(board, {"node": "10.0.0.1:8200"})["node"] == "10.0.0.1:8200"


def test_panel_queries_reads_rows_and_skips_hidden_targets():
    board = {
        "panels": [
            {"type": "stat", "title": "open", "targets": [{"expr": "up"}, {"expr": " "}]},
            {
                "type": "row",
                "title": "collapsed",
                "panels": [
                    {"type": "graph", "title": "inside", "targets": [{"expr": "a"}, {"expr": "b", "hide": True}]}
                ],
            },
        ]
    }
    assert queries.panel_queries(board) == [("open", "up"), ("inside", "a")]
    assert queries.panel_queries(board, include_hidden=True)[-1] == ("inside", "b")


# -- provisioning -------------------------------------------------------------


def test_datasource_provisioning_is_what_grafana_reads():
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert config["apiVersion"] == 1
    sources = config["datasources"]
    assert [s["isDefault"] for s in sources].count(True) == 1
    for source in sources:
        assert source["name"] and source["uid"]
        assert source["type"] == "prometheus"
        assert source["access"] == "proxy"
        assert re.fullmatch(r"https?://[^/\s]+/?", source["url"]), source["url"]


def test_dashboard_provider_loads_the_folder_the_json_is_installed_in():
    config = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "strongroom.yml").read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["name"] and provider["folder"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == dashboards.PROVISIONED_PATH == "/var/lib/grafana/dashboards/strongroom"


# -- the community Vault dashboard --------------------------------------------


def test_vault_community_extract_is_12904_and_keeps_its_queries():
    board = vault_community.load()
    assert board["gnetId"] == 12904
    assert board["__source"]["dashboard"].startswith("https://grafana.com/grafana/dashboards/12904")
    assert vault_community.extract(board) == board, "the extract is a fixed point of extract()"
    titles = {title for title, _ in queries.panel_queries(board, vault_community.STAND_INS)}
    assert {"Sealed Status", "Available Tokens", "Consul Requests", "Log Request Failures"} <= titles


def test_vault_community_queries_are_valid_promql_with_stand_ins(prometheus):
    found = queries.panel_queries(vault_community.load(), vault_community.STAND_INS)
    assert len(found) >= 30
    assert ("Sealed Status", "max(1 + vault_core_unsealed{})") in found
    assert not [expr for _, expr in found if UNSUBSTITUTED.search(expr)]
    assert invalid_queries(prometheus, found) == []
