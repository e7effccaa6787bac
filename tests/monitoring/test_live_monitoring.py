"""Proof on live data (issue 12, items 4 and 5): the shipped Prometheus
configuration, alert rules and Grafana dashboards against a real cluster.

One module-scoped stack, all real and on loopback: a Consul agent with
Prometheus telemetry, three Strongroom nodes (two workers each), HAProxy from
the package template in front, and Debian's ``prometheus`` reading a copy of
``monitoring/prometheus/`` in a temporary directory.  What the copy changes,
and nothing else: the target files (``targets/*.yml``) name the live addresses,
the token file holds a token created through the API whose only policy grants
``read`` on ``sys/metrics``, the scrape and evaluation intervals are 1 s, and
every rule's ``for:`` becomes ``FOR_IN_TEST`` (the shipped minutes would make
the test wait minutes); every rule's expression is the shipped one.

The scenario (``run_scenario``) drives traffic through HAProxy (writes, reads,
lists, 4xx) and straight at the standbys (forwarded writes), steps the active
node down (a failover: StrongroomLeadershipChanged fires), seals a standby
with ``sys/seal`` (StrongroomNodeSealed must fire) and unseals it (it must
resolve), then seals both standbys and stops the active node, so that no node
can take over (StrongroomNoActiveNode fires), starts it again and unseals
every node (it resolves), and ends with more traffic.  It waits on each alert with a deadline
and records what it saw; the tests then ask Prometheus's HTTP API: every panel
query of every Strongroom dashboard returns data, every rule is loaded,
healthy and its expression evaluates, the alerts fired and resolved, Vault's
community dashboard's queries evaluate, and ``python -m monitoring.render``
draws non-blank PNGs from this Prometheus.

Run with ``-s`` to see the Vault community dashboard's fill.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.image
import pytest
import requests
import yaml

from monitoring import render
from monitoring.grafana import queries, vault_community
from tests.helpers.cluster import StrongroomCluster
from tests.helpers.load import WriteLoad
from tests.helpers.procs import (
    ConsulAgent,
    HAProxyProcess,
    PrometheusProcess,
    PrometheusQueryError,
    StrongroomServer,
    start_agent,
    wait_until,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "monitoring" / "prometheus"
DASHBOARDS_DIR = ROOT / "monitoring" / "grafana" / "dashboards"
STRONGROOM_DASHBOARDS = ("overview", "api", "storage", "frontdoor")
VAULT_COMMUNITY_DIR = ROOT / "monitoring" / "grafana" / "vault-community"

INTERVAL = "1s"
FOR_IN_TEST = "2s"
#: The ``cluster`` target label, and the nodes' ``cluster_name`` (monitoring/prometheus/README.md:
#: equal values keep the Vault-named series' own ``cluster`` label consistent with it).
CLUSTER = "strongroom"
METRICS_POLICY = 'path "sys/metrics" {\n  capabilities = ["read"]\n}\n'

#: The alerts the scenario must see fire and then resolve: a sealed node, and a
#: failover that cannot happen (the active node gone, every other node sealed).
SEALED_ALERT = "StrongroomNodeSealed"
NO_ACTIVE_ALERT = "StrongroomNoActiveNode"
#: Fires on the step-down; resolves 5 minutes later (its window), so only its firing is asserted.
CHANGED_ALERT = "StrongroomLeadershipChanged"

#: Panels that cannot have data in this scenario: ``{(dashboard, panel title): why}`` (none).
EXCUSED_PANELS: dict[tuple[str, str], str] = {}
#: Panels with data that stays 0 through the whole scenario, and why that is the true value.
ZERO_PANELS: dict[tuple[str, str], str] = {
    ("storage", "Consul failure tolerance"): "one Consul server here: autopilot's failure tolerance is 0",
    ("frontdoor", "Queue"): "the HAProxy template sets no per-server maxconn, so no request ever queues",
    # Not a true zero: HAProxy retries only when a connection to a node fails mid-request. The scenario
    # provokes it by stopping the active node under load, which gave retries in 2 of 3 full runs on
    # 2026-12-06: timing-dependent, so only "returns data" is asserted for it.
    ("frontdoor", "Retries and redispatches"): "timing-dependent (see the comment above)",
    # Not a true zero either: a standby's forward fails only while it still sees a departed active
    # node. Since standbys serve reads from their change-log cache and HAProxy holds writes while no
    # node is active (issue 15), the scenario produced such errors on one node at most, once (no
    # rate): CI's full run on 2026-12-06 13:36 found the panel flat. Only "returns data" is asserted.
    ("api", "Forwarding errors"): "timing-dependent (see the comment above)",
}


# -- the temporary copy of monitoring/prometheus/ -------------------------------------------


def prepare_prometheus(dest: Path, targets: dict[str, dict[str, str]], tokens: dict[str, str]) -> Path:
    """Copy ``PROMETHEUS_DIR`` to ``dest``, point its target files at ``targets``
    (``{job: {node name: "host:port"}}``), write ``tokens[job]`` to each job's
    credentials file, shorten intervals and ``for:``; returns the copied ``prometheus.yml``."""
    shutil.copytree(PROMETHEUS_DIR, dest)
    config_path = dest / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    config.setdefault("global", {}).update(
        {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL, "scrape_timeout": INTERVAL}
    )
    for job in config["scrape_configs"]:
        _retarget(dest, job, targets[job["job_name"]], tokens.get(job["job_name"], ""))
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    for pattern in config.get("rule_files", []):
        for rules_path in dest.glob(pattern):
            rules = yaml.safe_load(rules_path.read_text())
            for group in rules["groups"]:
                for rule in group["rules"]:
                    if "for" in rule:
                        rule["for"] = FOR_IN_TEST
            rules_path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return config_path


def _retarget(dest: Path, job: dict, nodes: dict[str, str], token: str) -> None:
    """One scrape job of the copy: the global intervals, the live addresses in its
    ``file_sd_configs`` files (the labels of the shipped example's first entry,
    ``cluster`` and ``node`` set), ``token`` in its credentials file."""
    for key in ("scrape_interval", "scrape_timeout"):
        job.pop(key, None)
    for sd in job.get("file_sd_configs", []):
        for name in sd["files"]:
            example = yaml.safe_load((dest / name).read_text()) or [{}]
            labels = example[0].get("labels", {})
            groups = [
                {"targets": [address], "labels": {**labels, "cluster": CLUSTER, "node": node}}
                for node, address in nodes.items()
            ]
            (dest / name).write_text(yaml.safe_dump(groups))
    credentials = job.get("authorization", {}).get("credentials_file")
    if credentials:
        (dest / credentials).write_text(token + "\n")


# -- the scenario ----------------------------------------------------------------------------


class AlertRecorder:
    """Polls ``/api/v1/alerts`` in a thread and remembers, per alert name, every
    state it was seen in and when it was first seen firing (report data; the
    scenario waits on ``PrometheusProcess.firing`` itself)."""

    def __init__(self, prometheus: PrometheusProcess):
        self.prometheus = prometheus
        self.states: dict[str, set[str]] = {}
        self.first_firing: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-recorder", daemon=True)

    def start(self) -> AlertRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                alerts = self.prometheus.alerts()
            except (requests.RequestException, PrometheusQueryError):
                continue
            for alert in alerts:
                name = alert["labels"]["alertname"]
                self.states.setdefault(name, set()).add(alert["state"])
                if alert["state"] == "firing":
                    self.first_firing.setdefault(name, time.time())


@dataclass
class Live:
    """The running stack and what the scenario observed."""

    consul: ConsulAgent
    cluster: StrongroomCluster
    haproxy: HAProxyProcess
    prometheus: PrometheusProcess
    #: ``{alert name: (fired, resolved)}`` for the alerts the scenario waited on.
    waited: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    recorder: AlertRecorder | None = None
    started: float = field(default_factory=time.time)
    timeline: list[tuple[float, str]] = field(default_factory=list)

    def mark(self, what: str) -> None:
        self.timeline.append((time.time(), what))

    def haproxy_api(self, method: str, path: str, **kwargs) -> requests.Response:
        """A request through the front door with the root token."""
        headers = {"X-Vault-Token": self.cluster.root_token}
        return requests.request(method, f"{self.haproxy.url}/v1/{path}", headers=headers, timeout=10, **kwargs)


def _ok(response: requests.Response, *codes: int) -> requests.Response:
    assert response.status_code in codes, (
        f"{response.request.method} {response.url}: {response.status_code} {response.text}"
    )
    return response


def drive_traffic(live: Live, rounds: int = 1) -> None:
    """Writes, reads, lists and a few 4xx through HAProxy, forwarded writes and local
    reads straight at the performance standbys."""
    root = live.cluster.root_token
    front = requests.Session()
    front.headers["X-Vault-Token"] = root
    url = live.haproxy.url + "/v1/"
    for n in range(rounds):
        for i in range(10):
            _ok(front.put(url + f"secret/data/live-{i}", json={"data": {"round": n, "i": i}}, timeout=10), 200)
        for i in range(20):
            _ok(front.get(url + f"secret/data/live-{i % 10}", timeout=10), 200)
        _ok(front.request("LIST", url + "secret/metadata", timeout=10), 200)
        _ok(front.get(url + "secret/data/missing", timeout=10), 404)
        _ok(requests.get(url + "secret/data/live-0", headers={"X-Vault-Token": "not-a-token"}, timeout=10), 403)
        _ok(front.put(url + "secret/data/live-0", data=b"{not json", timeout=10), 400)
        _ok(front.post(url + "auth/token/create", json={"policies": ["default"], "ttl": "1h"}, timeout=10), 200)
        for standby in live.cluster.standbys():
            _ok(
                standby.api("PUT", "secret/data/forwarded", token=live.cluster.root_token, json={"data": {"n": n}}), 200
            )
            _ok(standby.api("GET", "secret/data/live-1", token=live.cluster.root_token), 200)


def client_errors(live: Live) -> None:
    """A 404, a 403 and a 400 at every node, twice, with a scrape of each node in
    between: a labelled counter appears at its first increment, so ``rate()`` (the
    4xx and error ratio panels) sees an increase only from the second one on.
    Waits until Prometheus shows the rate."""
    root = live.cluster.root_token

    def once() -> None:
        for node in live.cluster.nodes:
            _ok(node.api("GET", "secret/data/missing", token=root), 404)
            _ok(node.api("GET", "secret/data/live-0", token="not-a-token"), 403)
            _ok(
                requests.put(
                    f"{node.url}/v1/secret/data/live-0", data=b"{not json", headers={"X-Vault-Token": root}, timeout=10
                ),
                400,
            )

    once()
    for node in live.cluster.nodes:
        instance = f"{node.host}:{node.port}"
        wait_until(
            lambda i=instance: live.prometheus.query(f'strongroom_http_requests_total{{instance="{i}",status="404"}}'),
            30,
            f"the 404 series of {instance} scraped",
            0.2,
        )
    once()
    query = 'sum(rate(strongroom_http_requests_total{route!="sys/health", status=~"4.*"}[1m])) > 0'
    wait_until(lambda: live.prometheus.query(query), 30, "a 4xx rate in Prometheus", 0.2)
    live.mark("client errors at every node")


def contend(live: Live, writers: int = 8, writes: int = 10) -> None:
    """Concurrent writes of one key through HAProxy: the losers of each checked
    write are write conflicts, retried by the node (every write still succeeds)."""
    url = f"{live.haproxy.url}/v1/secret/data/contended"

    def write(writer: int) -> None:
        session = requests.Session()
        session.headers["X-Vault-Token"] = live.cluster.root_token
        for n in range(writes):
            _ok(session.put(url, json={"data": {"writer": writer, "n": n}}, timeout=10), 200)

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))
    live.mark("contended writes")


def knock(live: Live, seconds: float, readers: int = 4) -> None:
    """Reads through HAProxy from ``readers`` threads for ``seconds``, whatever they answer."""
    deadline = time.monotonic() + seconds
    url = f"{live.haproxy.url}/v1/secret/data/live-1"

    def read(_: int) -> None:
        session = requests.Session()
        session.headers["X-Vault-Token"] = live.cluster.root_token
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                session.get(url, timeout=5)

    with ThreadPoolExecutor(readers) as pool:
        list(pool.map(read, range(readers)))


def _wait_alert(live: Live, name: str, firing: bool, timeout: float = 30.0) -> bool:
    try:
        wait_until(lambda: bool(live.prometheus.firing(name)) == firing, timeout, f"{name} firing={firing}", 0.2)
    except TimeoutError:
        live.mark(f"{name} never {'fired' if firing else 'resolved'}")
        return False
    live.mark(f"{name} {'firing' if firing else 'resolved'}")
    return True


def _wait_scraped(live: Live, node: StrongroomServer, timeout: float = 30.0) -> None:
    instance = f"{node.host}:{node.port}"
    wait_until(
        lambda: live.prometheus.query(f'up{{job="strongroom",instance="{instance}"}} == 1'),
        timeout,
        f"a successful scrape of {instance}",
        0.2,
    )


def run_scenario(live: Live) -> None:
    """Traffic; a step-down (a failover); a standby sealed and unsealed; then both
    standbys sealed and the active node stopped, so no node can take over; the
    node started again and every node unsealed; more traffic.  Waits for the
    alerts each step should raise to fire, and to resolve."""
    cluster, root = live.cluster, live.cluster.root_token
    load = WriteLoad(live.haproxy.url, root, mount="kv", max_seconds=300, pause=0.05).start()
    try:
        drive_traffic(live)
        wait_until(
            lambda: live.prometheus.query('sum(strongroom_http_requests_total{method="PUT"}) > 30'),
            30,
            "the traffic in Prometheus",
            0.2,
        )
        live.mark("traffic")

        first = cluster.active()
        _ok(live.haproxy_api("PUT", "sys/step-down"), 204)
        active = wait_until(lambda: (a := cluster.active()) is not first and a, 15, "a new active node")
        live.mark(f"step-down: {node_name(first)} -> {node_name(active)}")
        # It resolves 5 minutes after the change (its expression's window): not waited for.
        live.waited[CHANGED_ALERT] = (_wait_alert(live, CHANGED_ALERT, True), False)
        drive_traffic(live)
        contend(live)

        sealed, other = cluster.standbys()
        _ok(sealed.api("PUT", "sys/seal", token=root), 204)
        live.mark(f"sealed {node_name(sealed)}")
        _ok(sealed.api("GET", "secret/data/live-1", token=root), 503)  # a client still talking to it
        sealed_fired = _wait_alert(live, SEALED_ALERT, True, timeout=20)
        sealed.unseal(cluster.keys[:2])
        cluster.wait_settled()
        live.waited[SEALED_ALERT] = (sealed_fired, _wait_alert(live, SEALED_ALERT, False))
        # Scraped again, its 503 series now exists; the next 503 (below) is an increase rate() sees.
        _wait_scraped(live, sealed)
        live.mark(f"unsealed {node_name(sealed)}")

        for node in (sealed, other):
            _ok(node.api("PUT", "sys/seal", token=root), 204)
        _ok(sealed.api("GET", "secret/data/live-1", token=root), 503)
        # Reads in flight while the node stops, before HAProxy's checks take it
        # out, meet a refused connection: HAProxy retries them (the retries panel).
        with ThreadPoolExecutor(1) as pool:
            reads = pool.submit(knock, live, 2.0)
            active.stop()
            reads.result()
        live.mark(f"sealed both standbys, stopped the active {node_name(active)}: no node can take over")
        no_active_fired = _wait_alert(live, NO_ACTIVE_ALERT, True)

        active.start()
        for node in (active, sealed, other):
            node.unseal(cluster.keys[:2])
        cluster.wait_settled()
        live.mark("started and unsealed every node")
        live.waited[NO_ACTIVE_ALERT] = (no_active_fired, _wait_alert(live, NO_ACTIVE_ALERT, False))
        _wait_alert(live, SEALED_ALERT, False)

        for node in cluster.nodes:
            _wait_scraped(live, node)
        drive_traffic(live, rounds=2)
        client_errors(live)
        wait_until(lambda: load.acked_since(time.monotonic() - 2) > 0, 15, "writes through HAProxy again", 0.2)
        live.mark("traffic again")
    finally:
        load.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The whole stack, the scenario run once; everything stopped by pid afterwards."""
    with live_stack(tmp_path_factory.mktemp("live-monitoring")) as state:
        run_scenario(state)
        yield state


@contextlib.contextmanager
def live_stack(work: Path) -> Iterator[Live]:
    """Consul, the cluster, HAProxy and Prometheus (reading the prepared copy of
    the shipped configuration) started and scraping; all stopped by pid on exit."""
    # Every test agent has Prometheus telemetry (CONSUL_AGENT_HCL: prometheus_retention_time).
    consul = start_agent()
    cluster = haproxy = prometheus = recorder = None
    try:
        cluster = StrongroomCluster(work, consul.address, n=3, workers=2, extra=f'cluster_name = "{CLUSTER}"\n').start()
        addresses = {node_name(n): f"{n.host}:{n.port}" for n in cluster.nodes}
        haproxy = HAProxyProcess([{"name": name, "address": a} for name, a in addresses.items()]).start()
        haproxy.wait_servers_up("strongroom_write", {node_name(cluster.nodes[0])})
        targets = {
            "strongroom": addresses,
            "haproxy": {"haproxy": f"{haproxy.host}:{haproxy.stats_port}"},
            "consul": {consul.node_name: consul.address},
        }
        # Consul runs without ACLs here, so it ignores the consul job's token.
        tokens = {"strongroom": _metrics_token(cluster), "consul": "unused-consul-acls-are-off"}
        config = prepare_prometheus(work / "prometheus", targets, tokens)
        prometheus = PrometheusProcess(config).start()
        prometheus.wait_targets_up({"strongroom": 3, "haproxy": 1, "consul": 1})
        state = Live(consul, cluster, haproxy, prometheus)
        recorder = state.recorder = AlertRecorder(prometheus).start()
        yield state
    finally:
        for part in (recorder, prometheus, haproxy, cluster):
            if part is not None:
                part.stop()
        consul.stop()


def node_name(node: StrongroomServer) -> str:
    """The node's ``node_id``: its name in HAProxy and in the ``node`` label."""
    return node.config_path.stem


def _metrics_token(cluster: StrongroomCluster) -> str:
    """A token whose only policy grants read on ``sys/metrics`` (what Prometheus scrapes with)."""
    node = cluster.active()
    _ok(cluster.api(node, "PUT", "sys/policies/acl/prometheus-metrics", json={"policy": METRICS_POLICY}), 204)
    _ok(cluster.api(node, "PUT", "sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}}), 204)
    _ok(cluster.api(node, "PUT", "sys/mounts/kv", json={"type": "kv"}), 204)
    created = _ok(
        cluster.api(
            node,
            "POST",
            "auth/token/create",
            json={"policies": ["prometheus-metrics"], "no_default_policy": True, "ttl": "24h"},
        ),
        200,
    )
    return created.json()["auth"]["client_token"]


# -- the tests -------------------------------------------------------------------------------


def _shipped_rules() -> list[dict]:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    return [
        rule
        for pattern in config.get("rule_files", [])
        for path in sorted(PROMETHEUS_DIR.glob(pattern))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def _panel_queries(dashboard: str) -> list[tuple[str, str]]:
    """``(panel title, expression)`` of a shipped Strongroom dashboard, variables substituted."""
    return queries.panel_queries(render.load_dashboard(dashboard))


def test_prometheus_scrapes_every_node_haproxy_and_consul_with_the_shipped_configuration(live):
    targets = live.prometheus.targets()
    assert sorted(t["labels"]["job"] for t in targets) == [
        "consul",
        "haproxy",
        "strongroom",
        "strongroom",
        "strongroom",
    ]
    assert [t["lastError"] for t in targets if t["health"] != "up"] == []


def test_every_panel_query_of_every_strongroom_dashboard_returns_data(live):
    failed, empty, evaluated = [], [], 0
    for name in STRONGROOM_DASHBOARDS:
        found = _panel_queries(name)
        assert found, f"dashboard {name} has no queries"
        for title, expr in found:
            if (name, title) in EXCUSED_PANELS:
                continue
            evaluated += 1
            try:
                if not live.prometheus.query(expr):
                    empty.append(f"{name} / {title}: {expr}")
            except PrometheusQueryError as exc:
                failed.append(f"{name} / {title}: {exc}")
    assert failed == []
    assert empty == []
    assert evaluated > 20


def test_every_panel_query_showed_a_value_other_than_zero_during_the_scenario(live):
    """Data that is 0 throughout shows nothing: the scenario produces every panel's
    event (retries, forwarding, conflicts, seal events, ...) but those in ``ZERO_PANELS``."""
    titles = {(name, title) for name in STRONGROOM_DASHBOARDS for title, _ in _panel_queries(name)}
    assert set(ZERO_PANELS) | set(EXCUSED_PANELS) <= titles, "an excused panel is no longer in its dashboard"
    start, end = live.started - 5, time.time()
    flat = []
    for name in STRONGROOM_DASHBOARDS:
        for title, expr in _panel_queries(name):
            if (name, title) in EXCUSED_PANELS or (name, title) in ZERO_PANELS:
                continue
            # Every second of the scenario, as Grafana's graph of it would be drawn.
            series = live.prometheus.query_range(expr, start, end, 1)
            values = [float(v) for s in series for _, v in s["values"]]
            if not any(abs(v) > 0 for v in values):
                points = sum(1 for v in values if v == v)  # NaN != NaN
                flat.append(f"{name} / {title}: {expr} ({len(series)} series, {points} points, none above 0)")
    assert flat == [], _flat_context(live, start, end)


def _flat_context(live: Live, start: float, end: float) -> str:
    """What Prometheus holds of the request counters by status class, and the
    scenario's marks: enough to tell a panel's mistake from a scenario's gap."""
    lines = [f"{at - live.started:7.1f} s  {what}" for at, what in live.timeline]
    for status in ("2", "4", "5"):
        expr = f'sum by (instance) (increase(strongroom_http_requests_total{{status=~"{status}.*"}}[1m]))'
        for s in live.prometheus.query_range(expr, start, end, 5):
            seen = [(round(float(t) - live.started), round(float(v), 1)) for t, v in s["values"] if float(v) > 0]
            lines.append(f"{status}xx {s['metric'].get('instance')}: {seen[:40]}")
    return "\n".join(lines)


def test_every_alert_rule_is_loaded_healthy_and_its_expression_evaluates(live):
    shipped = _shipped_rules()
    loaded = live.prometheus.rules()
    assert sorted(r.get("alert") or r.get("record") for r in shipped) == sorted(r["name"] for r in loaded)
    assert {r["name"]: r["lastError"] for r in loaded if r["health"] != "ok"} == {}
    for rule in shipped:
        live.prometheus.query(rule["expr"])  # raises PrometheusQueryError if Prometheus refuses it


def test_the_sealed_node_alert_fired_and_resolved(live):
    assert live.waited[SEALED_ALERT] == (True, True), live.timeline


def test_the_no_active_node_alert_fired_when_no_node_could_take_over_and_resolved(live):
    assert live.waited[NO_ACTIVE_ALERT] == (True, True), live.timeline


def test_the_leadership_changed_alert_fired_on_the_step_down(live):
    assert live.waited[CHANGED_ALERT][0], live.timeline


def test_vault_community_dashboard_queries_evaluate_on_strongroom(live):
    """Vault's community dashboard (12904) through the Vault names: every query is
    accepted and evaluated; which panels fill is report data (monitoring/README.md),
    not asserted here."""
    node = live.cluster.nodes[0]
    variables = {**vault_community.STAND_INS, "node": node.host, "port": str(node.port)}
    found = queries.panel_queries(vault_community.load(), variables)
    filled: dict[str, bool] = {}
    for title, expr in found:
        filled[title] = bool(live.prometheus.query(expr)) or filled.get(title, False)
    assert len(found) > 20
    print(f"Vault community dashboard: {sum(filled.values())} of {len(filled)} panels fill")
    for title, has_data in filled.items():
        print(f"  {'fills' if has_data else 'empty'}: {title}")


def test_render_draws_the_overview_and_api_dashboards_from_live_data(live, tmp_path):
    out = tmp_path / "png"
    command = [sys.executable, "-m", "monitoring.render", "--prometheus", live.prometheus.url]
    command += ["--dashboard", "overview", "--dashboard", "api", "--out", str(out), "--since", "3m"]
    done = subprocess.run(command + ["--rate-interval", "10s"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in ("overview", "api"):
        path = out / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = matplotlib.image.imread(path)[:, :, :3]
        colours = {tuple(p) for p in pixels.reshape(-1, 3).round(2).tolist()}
        assert len(colours) > 200, f"{name}.png looks blank: {len(colours)} colours"
        # Text, axes and grid are grey; only the plotted series (and their legend
        # keys) are coloured: a picture of empty panels has next to none.
        coloured = int((pixels.max(axis=2) - pixels.min(axis=2) > 0.25).sum())
        assert coloured > 5000, f"{name}.png: hardly any series drawn ({coloured} coloured pixels)"
