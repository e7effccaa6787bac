"""``monitoring/prometheus/``: the real ``promtool`` accepts the scrape
configuration and the alert rules and passes the rules' unit tests; every
alert has a unit test where it fires and one where it does not, and the
annotations an operator needs; the names the rules read are the names
Strongroom and its HAProxy configuration really have.

Fast (promtool evaluates the unit tests in about a second); the live test of
the same files against a real cluster is elsewhere (issue 12, item 4).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import strongroom.metrics  # noqa: F401  (registers Strongroom's metrics in REGISTRY)
from strongroom import haproxy

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "monitoring" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "strongroom.yml"
UNIT_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
TOKEN_FILES = ("strongroom-metrics-token", "consul-metrics-token")
SEVERITIES = {"critical", "warning", "info"}


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool not found: install the Debian package `prometheus` (apt-get install prometheus)")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def alerting_rules() -> Iterator[dict]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                yield rule


def scrape_configs(directory: Path = PROMETHEUS_DIR) -> dict[str, dict]:
    config = yaml.safe_load((directory / "prometheus.yml").read_text())
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_check_config_on_a_deployed_copy(tmp_path):
    """As deployed: the directory copied, targets and token files written beside
    prometheus.yml (promtool resolves them against the config's directory and
    refuses a missing credentials file)."""
    deployed = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, deployed, ignore=shutil.ignore_patterns("tests"))
    (deployed / "targets" / "strongroom.yml").write_text(
        "- targets: ['127.0.0.1:18201', '127.0.0.1:18202']\n  labels: {cluster: test, node: node1}\n"
    )
    for name in TOKEN_FILES:
        (deployed / name).write_text("hvs.test-token\n")
    result = promtool("check", "config", "prometheus.yml", cwd=deployed)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: prometheus.yml is valid" in result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout + result.stderr

    (deployed / "strongroom-metrics-token").unlink()
    missing = promtool("check", "config", "prometheus.yml", cwd=deployed)
    assert missing.returncode != 0, "promtool accepted a config whose token file is missing"


def test_scrape_jobs_reach_every_node_directly():
    jobs = scrape_configs()
    assert set(jobs) == {"strongroom", "haproxy", "consul"}
    node = jobs["strongroom"]
    assert node["metrics_path"] == "/v1/sys/metrics"
    assert node["params"] == {"format": ["prometheus"]}
    assert node["authorization"] == {"credentials_file": "strongroom-metrics-token"}
    assert jobs["haproxy"]["metrics_path"] == "/metrics"
    assert jobs["consul"]["metrics_path"] == "/v1/agent/metrics"
    assert jobs["consul"]["params"] == {"format": ["prometheus"]}
    for name, job in jobs.items():
        assert [sd["files"] for sd in job["file_sd_configs"]] == [[f"targets/{name}.yml"]]
        assert "static_configs" not in job

    # The example targets name every node, and no node target is HAProxy's.
    targets = {name: yaml.safe_load((PROMETHEUS_DIR / "targets" / f"{name}.yml").read_text()) for name in jobs}
    for name, groups in targets.items():
        for group in groups:
            assert group["targets"], name
            assert {"cluster", "node"} <= set(group["labels"]), f"targets/{name}.yml: {group}"
    node_addresses = {address for group in targets["strongroom"] for address in group["targets"]}
    haproxy_addresses = {address for group in targets["haproxy"] for address in group["targets"]}
    assert len(targets["strongroom"]) >= 3
    assert not node_addresses & haproxy_addresses


def test_check_rules():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in yaml.safe_load(RULES.read_text())["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_unit_tests_pass():
    assert UNIT_TESTS, "no promtool unit tests in monitoring/prometheus/tests"
    result = promtool("test", "rules", *(str(path) for path in UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout + result.stderr


def unit_test_cases() -> dict[str, dict[str, list[str]]]:
    """``{alertname: {"fires": [...], "silent": [...]}}`` over every promtool
    test file, each entry naming the file, test and evaluation time."""
    cases: dict[str, dict[str, list[str]]] = {}
    for path in UNIT_TESTS:
        document = yaml.safe_load(path.read_text())
        assert document["rule_files"] == ["../rules/strongroom.yml"], path.name
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                kind = "fires" if case.get("exp_alerts") else "silent"
                where = f"{path.name}: {test.get('name')} at {case['eval_time']}"
                cases.setdefault(case["alertname"], {"fires": [], "silent": []})[kind].append(where)
    return cases


def test_every_alert_has_a_firing_and_a_silent_unit_test():
    cases = unit_test_cases()
    names = [rule["alert"] for rule in alerting_rules()]
    assert len(names) == len(set(names)), "two alerts share a name"
    for name in names:
        assert cases.get(name, {}).get("fires"), f"{name}: no promtool test where it fires"
        assert cases.get(name, {}).get("silent"), f"{name}: no promtool test where it does not fire"
    assert set(cases) <= set(names), f"tests for alerts that do not exist: {set(cases) - set(names)}"


def test_every_alert_says_how_bad_what_and_what_to_do():
    for rule in alerting_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        for annotation in ("summary", "description", "runbook"):
            text = rule["annotations"].get(annotation, "")
            assert len(text.split()) >= 4, f"{name}: annotation {annotation!r} missing or empty"
        assert "for" in rule, f"{name}: say how long it must hold, even 0m"


def exported_names() -> set[str]:
    """Every sample name a Strongroom node exports for its registered metrics."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {family.name + suffix for family in REGISTRY.collect() for suffix in suffixes.get(family.type, ("",))}


def test_rules_read_metrics_strongroom_exports():
    used = set()
    for rule in alerting_rules():
        unquoted = re.sub(r'"[^"]*"', '""', rule["expr"])  # label values are not metric names
        used |= set(re.findall(r"\bstrongroom_[a-z_]+", unquoted))
    assert used, "no strongroom_ metric in the rules"
    assert used <= exported_names(), f"rules read metrics no node exports: {sorted(used - exported_names())}"


def test_rules_name_the_backends_haproxy_has():
    config = haproxy.render([{"name": "node1", "address": "127.0.0.1:8201"}])
    backends = set(re.findall(r"^backend (\S+)", config, re.M))
    proxies: set[str] = set()
    for rule in alerting_rules():
        for value in re.findall(r'proxy=~?"([^"]+)"', rule["expr"]):
            proxies |= {name for name in backends if re.fullmatch(value, name)}
            assert any(re.fullmatch(value, name) for name in backends), f"{rule['alert']}: no backend {value}"
    assert proxies == {"strongroom_write", "strongroom_read"}
    assert "use-service prometheus-exporter if { path /metrics }" in config
