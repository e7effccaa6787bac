"""``ansible/`` on real systemd hosts (issue 13, item 5): podman containers from
the bookworm image of scripts/build-host-image.sh, provisioned by the real
playbooks, checked from this machine over the containers' network.

Topology (ansible/inventories/containers/hosts.yml): node1-3 each run a Consul
server and a Strongroom node; lb1 runs HAProxy and Prometheus.  The tests share
one cluster and run in file order: provision, re-provision without change,
initialise and use through HAProxy, rolling restart under write load, then a
killed host and a host cut off the network.  Each step measures what it is
about and adds it to the module's report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.helpers.container_cluster import ContainerCluster
from tests.helpers.load import WriteLoad
from tests.helpers.procs import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.deploy, pytest.mark.timeout(1800)]

API_PORT = 8200
PROMETHEUS_PORT = 9090
CONSUL_HTTP_PORT = 8500
# Unsealed: active, performance standby, standby.
UNSEALED = (200, 473, 429)


@pytest.fixture(scope="module")
def cluster(containers: ContainerCluster) -> ContainerCluster:
    return containers


def nodes(cluster: ContainerCluster) -> list[str]:
    return cluster.groups["strongroom_nodes"]


def node_url(cluster: ContainerCluster, host: str) -> str:
    return f"{cluster.scheme}://{cluster.address(host)}:{API_PORT}"


def front_url(cluster: ContainerCluster) -> str:
    return f"{cluster.scheme}://{cluster.address(cluster.groups['loadbalancers'][0])}:{API_PORT}"


def health(cluster: ContainerCluster, host: str) -> int:
    """``sys/health``'s status code on ``host``, 0 when it does not answer."""
    try:
        return requests.get(node_url(cluster, host) + "/v1/sys/health", timeout=2, verify=cluster.verify).status_code
    except requests.RequestException:
        return 0


def active(cluster: ContainerCluster, among: list[str] | None = None) -> str:
    """The one node answering 200 (AssertionError unless exactly one does)."""
    hosts = [h for h in (among or nodes(cluster)) if health(cluster, h) == 200]
    assert len(hosts) == 1, f"active nodes: {hosts}"
    return hosts[0]


def node_ids(cluster: ContainerCluster) -> dict[str, str]:
    """The X-Strongroom-Node each host answers with -> the host."""
    ids = {}
    for host in nodes(cluster):
        answer = requests.get(node_url(cluster, host) + "/v1/sys/health", timeout=5, verify=cluster.verify)
        ids[answer.headers["X-Strongroom-Node"]] = host
    return ids


def init_result(cluster: ContainerCluster) -> dict:
    """What operator-init.yml wrote for the operator: unseal keys and root token."""
    return json.loads((cluster.secrets / "init.json").read_text())


def root_token(cluster: ContainerCluster) -> str:
    return init_result(cluster)["root_token"]


def front(
    cluster: ContainerCluster, method: str, path: str, headers: dict[str, str] | None = None, json: object = None
) -> requests.Response:
    """A request to HAProxy with the root token."""
    headers = {"X-Vault-Token": root_token(cluster), **(headers or {})}
    url = f"{front_url(cluster)}/v1/{path}"
    return requests.request(method, url, headers=headers, json=json, timeout=10, verify=cluster.verify)


def wait_healthy(cluster: ContainerCluster, timeout: float = 90) -> dict[str, int]:
    """Wait until every node is unsealed and exactly one is active; return the codes."""

    def settled() -> dict[str, int] | None:
        codes = {h: health(cluster, h) for h in nodes(cluster)}
        ok = all(c in UNSEALED for c in codes.values()) and list(codes.values()).count(200) == 1
        return codes if ok else None

    return wait_until(settled, timeout, "every node unsealed and one active", interval=0.5)


def check_no_write_lost(cluster: ContainerCluster, load: WriteLoad) -> None:
    session = requests.Session()
    headers = {"X-Vault-Token": root_token(cluster)}

    def read(key: str) -> str | None:
        # verify per request: a session's own verify loses to REQUESTS_CA_BUNDLE.
        answer = session.get(f"{front_url(cluster)}/v1/kv/{key}", headers=headers, timeout=10, verify=cluster.verify)
        return answer.json()["data"]["value"] if answer.status_code == 200 else None

    lost = load.unacknowledged_or_wrong(read)
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:5]}"


# -- 1. provisioning ---------------------------------------------------------------


def test_site_provisions_fresh_hosts(cluster: ContainerCluster, report: list[str]) -> None:
    run = cluster.playbook("site.yml").check()
    report.append(f"site.yml on fresh hosts: {run.seconds:.1f} s ({len(cluster.hosts.hosts)} hosts)")
    for host in nodes(cluster):
        for unit in ("consul", "strongroom"):
            state = cluster.hosts.exec(host, "systemctl", "is-active", unit, check=False).stdout.strip()
            assert state == "active", f"{unit} on {host}: {state}"
    # Provisioned, not yet initialised: every node answers 501 (Vault's uninitcode).
    assert {h: health(cluster, h) for h in nodes(cluster)} == dict.fromkeys(nodes(cluster), 501)


def test_site_second_run_changes_nothing(cluster: ContainerCluster, report: list[str]) -> None:
    run = cluster.playbook("site.yml").check()
    report.append(f"site.yml again (idempotent): {run.seconds:.1f} s")
    assert run.changed() == {}, f"second run changed {run.changed()}"


# -- 2. secret zero, then the cluster end to end through HAProxy -------------------


def test_operator_init_unseals_every_node(cluster: ContainerCluster, report: list[str]) -> None:
    run = cluster.playbook("operator-init.yml").check()
    report.append(f"operator-init.yml: {run.seconds:.1f} s")
    keys_file = cluster.secrets / "init.json"
    assert keys_file.stat().st_mode & 0o777 == 0o600
    assert root_token(cluster) not in run.output, "the root token was printed"
    codes = wait_healthy(cluster)
    assert sorted(codes.values()) == [200, 473, 473], codes


def test_write_then_read_from_a_performance_standby_through_haproxy(cluster: ContainerCluster) -> None:
    ids = node_ids(cluster)
    leader = active(cluster)
    mounted = front(cluster, "POST", "sys/mounts/kv", json={"type": "kv"})
    assert mounted.status_code == 204, mounted.text
    write = front(cluster, "PUT", "kv/deploy/check", json={"value": "42"})
    assert write.status_code == 204, write.text
    assert ids[write.headers["X-Strongroom-Node"]] == leader
    index = write.headers.get("X-Vault-Index", "")
    served_by = set()
    for _ in range(12):
        read = front(cluster, "GET", "kv/deploy/check", headers={"X-Vault-Index": index} if index else {})
        assert read.status_code == 200 and read.json()["data"] == {"value": "42"}, read.text
        served_by.add(ids[read.headers["X-Strongroom-Node"]])
    standbys = served_by - {leader}
    assert standbys, f"every read went to the active node {leader}"
    for host in standbys:
        body = requests.get(node_url(cluster, host) + "/v1/sys/health", timeout=5, verify=cluster.verify).json()
        assert body["performance_standby"] is True, (host, body)


def test_prometheus_scrapes_every_node(cluster: ContainerCluster) -> None:
    monitor = cluster.address(cluster.groups["monitoring"][0])

    def all_up() -> dict[str, str] | None:
        answer = requests.get(
            f"http://{monitor}:{PROMETHEUS_PORT}/api/v1/query", params={"query": 'up{job="strongroom"}'}, timeout=5
        )
        result = {r["metric"]["instance"]: r["value"][1] for r in answer.json()["data"]["result"]}
        return result if len(result) == len(nodes(cluster)) and set(result.values()) == {"1"} else None

    up = wait_until(all_up, 90, 'up{job="strongroom"} == 1 for every node', interval=1)
    addresses = {cluster.address(h) for h in nodes(cluster)}
    assert {instance.rsplit(":", 1)[0] for instance in up} <= addresses | set(nodes(cluster)), up


def test_tls_between_clients_haproxy_nodes_prometheus_and_consul_agents(cluster: ContainerCluster) -> None:
    """The run has TLS on (conftest): every hop verified against the run's CA."""
    assert cluster.tls
    # A GET goes to the read backend (the active node and the performance standbys: 200 or 473);
    # X-Vault-Forward: active-node takes the write backend, the active node alone.
    front = requests.get(f"{front_url(cluster)}/v1/sys/health", timeout=5, verify=cluster.verify)
    assert front.status_code in (200, 473) and front.url.startswith("https://"), (front.status_code, front.url)
    active = requests.get(
        f"{front_url(cluster)}/v1/sys/health",
        headers={"X-Vault-Forward": "active-node"},
        timeout=5,
        verify=cluster.verify,
    )
    assert active.status_code == 200, active.status_code
    for host in nodes(cluster):
        with pytest.raises(requests.exceptions.SSLError):  # a client that does not trust the CA
            requests.get(f"{node_url(cluster, host)}/v1/sys/health", timeout=5)
        plain = f"http://{cluster.address(host)}:{API_PORT}/v1/sys/health"
        try:
            refused = requests.get(plain, timeout=5).status_code
        except requests.ConnectionError:
            refused = 0
        assert refused not in UNSEALED, f"{host} answered plain HTTP with {refused}"
    monitor = cluster.address(cluster.groups["monitoring"][0])
    targets = requests.get(f"http://{monitor}:{PROMETHEUS_PORT}/api/v1/targets", timeout=5).json()["data"]
    scraped = {t["scrapeUrl"]: t["health"] for t in targets["activeTargets"] if t["labels"]["job"] == "strongroom"}
    assert len(scraped) == len(nodes(cluster)) and all(url.startswith("https://") for url in scraped), scraped
    management = {"X-Consul-Token": json.loads((cluster.secrets / "consul.json").read_text())["management_token"]}
    for host in cluster.groups["consul_servers"]:
        consul = f"http://{cluster.address(host)}:{CONSUL_HTTP_PORT}"
        config = requests.get(f"{consul}/v1/agent/self", headers=management, timeout=5).json()["DebugConfig"]
        verified = {k: config[k] for k in ("VerifyIncomingRPC", "VerifyOutgoing", "VerifyServerHostname")}
        assert verified == dict.fromkeys(verified, True), (host, verified)
        members = requests.get(f"{consul}/v1/agent/members", headers=management, timeout=5).json()
        assert sorted(m["Status"] for m in members) == [1] * len(cluster.groups["consul_servers"]), members


def test_consul_acls_deny_a_kv_read_without_token(cluster: ContainerCluster) -> None:
    consul = f"http://{cluster.address(nodes(cluster)[0])}:{CONSUL_HTTP_PORT}"
    management = {"X-Consul-Token": json.loads((cluster.secrets / "consul.json").read_text())["management_token"]}
    keys = requests.get(f"{consul}/v1/kv/strongroom/?keys", headers=management, timeout=5)
    assert keys.status_code == 200 and keys.json(), (keys.status_code, keys.text)
    key = keys.json()[0]
    # A key read is refused outright; a recursive read would only be filtered (404).
    denied = requests.get(f"{consul}/v1/kv/{key}", timeout=5)
    assert denied.status_code == 403, (key, denied.status_code, denied.text)
    assert requests.get(f"{consul}/v1/kv/{key}", headers=management, timeout=5).status_code == 200


# -- 3. rolling restart under a steady write load ---------------------------------


def unit_stops(cluster: ContainerCluster, host: str, unit: str, since: float) -> list[float]:
    """Wall-clock times at which ``unit`` on ``host`` began to stop."""
    argv = ["journalctl", "-u", unit, "-o", "json", "--since", f"@{int(since)}", "--no-pager"]
    stops = []
    for line in cluster.hosts.exec(host, *argv, check=False).stdout.splitlines():
        entry = json.loads(line)
        if str(entry.get("MESSAGE", "")).startswith("Stopping"):
            stops.append(int(entry["__REALTIME_TIMESTAMP"]) / 1e6)
    return stops


def upgraded_wheelhouse(cluster: ContainerCluster) -> tuple[Path, str]:
    """A copy of the run's wheelhouse whose Strongroom wheel is a later version
    (``<version>.post1``), built by scripts/build-wheelhouse.sh."""
    assert cluster.wheelhouse is not None
    (wheel,) = cluster.wheelhouse.glob("strongroom-*.whl")
    version = wheel.name.split("-")[1] + ".post1"
    copy = cluster.directory / "wheelhouse-upgrade"
    shutil.copytree(cluster.wheelhouse, copy, ignore=shutil.ignore_patterns(".lock"), dirs_exist_ok=True)
    script = Path(__file__).resolve().parents[2] / "scripts" / "build-wheelhouse.sh"
    env = {**os.environ, "STRONGROOM_VERSION": version}
    done = subprocess.run([str(script), str(copy)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert [w.name.split("-")[1] for w in copy.glob("strongroom-*.whl")] == [version]
    return copy, version


def installed_version(cluster: ContainerCluster, host: str) -> str:
    code = "import importlib.metadata as m; print(m.version('strongroom'))"
    return cluster.hosts.exec(host, "/opt/strongroom/venv/bin/python", "-c", code).stdout.strip()


def main_pid(cluster: ContainerCluster, host: str) -> str:
    return cluster.hosts.exec(host, "systemctl", "show", "-p", "MainPID", "--value", "strongroom").stdout.strip()


def test_upgrade_and_rolling_restart_lose_no_acknowledged_write(cluster: ContainerCluster, report: list[str]) -> None:
    """The README's upgrade: site.yml with a new wheel installs it and only marks
    the nodes (nothing restarts), then rolling-restart.yml (Consul's servers
    too) puts it into service, all under a steady write load."""
    wheelhouse, version = upgraded_wheelhouse(cluster)
    pids = {h: main_pid(cluster, h) for h in nodes(cluster)}
    wall_started = time.time()
    offset = wall_started - time.monotonic()  # wall clock = monotonic + offset (same kernel clock in the containers)
    load = WriteLoad(front_url(cluster), root_token(cluster), verify=cluster.verify, max_seconds=900, pause=0.02)
    load.start()
    run = None
    try:
        wait_until(lambda: len(load.acked) >= 20, 30, "the write load to get going")
        install = cluster.playbook("site.yml", extra={"strongroom_wheelhouse": str(wheelhouse)})
        installed_at = time.time()
        if install.returncode == 0:
            # Consul's servers first, one at a time, then the Strongroom nodes.
            extra = {"rolling_restart_consul": True, "strongroom_wheelhouse": str(wheelhouse)}
            run = cluster.playbook("rolling-restart.yml", extra=extra)
            time.sleep(2)  # writes after the last step
    finally:
        load.stop()
    install.check()
    report.append(f"site.yml with the {version} wheel under load: {install.seconds:.1f} s")
    assert "RESTART PENDING" in install.output
    assert run is not None
    run.check()
    report.append(f"rolling-restart.yml under load: {run.seconds:.1f} s, {len(load.acked)} writes acknowledged")
    units = [("consul", h) for h in cluster.groups["consul_servers"]] + [("strongroom", h) for h in nodes(cluster)]
    steps = sorted(
        (stop, f"{unit} on {host}") for unit, host in units for stop in unit_stops(cluster, host, unit, wall_started)
    )
    assert [what for stop, what in steps if stop < installed_at] == [], "site.yml restarted a service"
    for host in nodes(cluster):
        assert installed_version(cluster, host) == version, host
        assert main_pid(cluster, host) not in ("0", pids[host]), f"{host}: the node was not restarted"
    assert len(steps) >= len(units), f"restarts seen in the journals: {steps}"
    acked = [at + offset for *_, at in load.acked]
    gaps: list[tuple[float, str]] = []
    for i, (stop, what) in enumerate(steps):
        end = steps[i + 1][0] if i + 1 < len(steps) else acked[-1]
        times = [max((t for t in acked if t <= stop), default=stop)] + [t for t in acked if stop < t <= end]
        outage = max((b - a for a, b in zip(times, times[1:], strict=False)), default=end - stop)
        report.append(f"  step {i + 1}: {what} restarted, longest write gap {outage * 1000:.0f} ms")
        gaps.append((outage, what))
    # Each step costs at most a failover (the active node steps down before its
    # own or its Consul agent's restart); 15 s leaves room for a loaded CI host
    # and still fails the 12-64 s stalls of a session left holding the lock.
    assert max(gaps)[0] < 15, gaps
    wait_healthy(cluster)
    check_no_write_lost(cluster, load)


# -- 4. a killed host, a host cut off ---------------------------------------------


def test_killed_active_host_fails_over_and_comes_back(cluster: ContainerCluster, report: list[str]) -> None:
    ids = node_ids(cluster)
    victim = active(cluster)
    load = WriteLoad(
        front_url(cluster), root_token(cluster), verify=cluster.verify, max_seconds=600, pause=0.02
    ).start()
    try:
        wait_until(lambda: len(load.acked) >= 20, 30, "the write load to get going")
        killed_at = time.monotonic()
        cluster.hosts.kill(victim)
        # Ansible's ControlPersist master for the victim died with its TCP
        # connection; the next playbook (operator-unseal.yml) opens a new one.
        cluster.drop_ssh_master(victim)

        def taken_over() -> float | None:
            later = [at for _, _, node, at in load.acked if at > killed_at and ids.get(node) not in (None, victim)]
            return later[0] if later else None

        first = wait_until(taken_over, 60, "a write acknowledged by another node after the kill", interval=0.2)
        report.append(
            f"podman kill of the active host {victim}: next write acknowledged after {first - killed_at:.2f} s"
        )
        survivors = [h for h in nodes(cluster) if h != victim]
        assert active(cluster, survivors) != victim

        # The host boots again: systemd starts Consul and a sealed node; operator-unseal.yml unseals it.
        cluster.hosts.start_again(victim)
        wait_until(lambda: health(cluster, victim) == 503, 90, f"{victim} up and sealed", interval=0.5)
        cluster.playbook("operator-unseal.yml").check()
        wait_healthy(cluster)
    finally:
        load.stop()
    check_no_write_lost(cluster, load)


def test_host_cut_off_fails_over_and_recovers_when_reconnected(cluster: ContainerCluster, report: list[str]) -> None:
    ids = node_ids(cluster)
    victim = active(cluster)
    load = WriteLoad(
        front_url(cluster), root_token(cluster), verify=cluster.verify, max_seconds=600, pause=0.02
    ).start()
    try:
        wait_until(lambda: len(load.acked) >= 20, 30, "the write load to get going")
        survivors = [h for h in nodes(cluster) if h != victim]
        cut_at = time.monotonic()
        cluster.hosts.disconnect(victim)
        try:
            # The lock moves when the Consul servers declare the cut-off host's agent failed
            # (serfHealth): a survivor's own sys/health says when, apart from any client timeout.
            wait_until(
                lambda: any(health(cluster, h) == 200 for h in survivors),
                90,
                "another node active after the cut",
                interval=0.05,
            )
            active_after = time.monotonic() - cut_at

            def taken_over() -> float | None:
                later = [at for _, _, node, at in load.acked if at > cut_at and ids.get(node) not in (None, victim)]
                return later[0] if later else None

            first = wait_until(taken_over, 90, "a write acknowledged by another node after the cut", interval=0.2)
            report.append(
                f"podman network disconnect of the active host {victim}: another node active after "
                f"{active_after:.2f} s, next write acknowledged through HAProxy after {first - cut_at:.2f} s "
                "(the load's write in flight to the cut host waits out its 5 s timeout)"
            )
        finally:
            cluster.hosts.connect(victim)
        # Back on the network, the old active has stepped down and rejoins as a standby.
        codes = wait_healthy(cluster, timeout=120)
        assert codes[victim] in (473, 429), codes
    finally:
        load.stop()
    check_no_write_lost(cluster, load)
