"""``strongroom dev-cluster``, run as users run it: a subprocess starting real
Consul, real nodes and the real HAProxy on loopback, then stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
from pathlib import Path

import hvac
import requests

from strongroom import devcluster
from tests.helpers.procs import free_port, strongroom_binary, wait_until

START_TIMEOUT = 180


def dev_cluster(*args: str) -> list[str]:
    return [strongroom_binary(), "dev-cluster", *args]


def logs(directory: Path) -> str:
    return "\n".join(
        f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        for log in sorted(directory.glob("*.log"))
    )


def pids_of(state: dict) -> dict[str, int]:
    pids = {n["name"]: n["pid"] for n in state["nodes"]}
    pids.update({c["name"]: c["pid"] for c in state["consul_servers"]})
    pids["haproxy"] = state["haproxy"]["pid"]
    return pids


def assert_all_gone(pids: dict[str, int]) -> None:
    for name, pid in pids.items():
        wait_until(lambda pid=pid: not devcluster.pid_alive(pid), 20, f"{name} (pid {pid}) to be gone")


def check_cluster(state: dict, output: str) -> None:
    """What every dev cluster must offer once it reports ready."""
    front, token = state["haproxy"]["address"], state["root_token"]
    assert f"export VAULT_ADDR={front}" in output and f"export VAULT_TOKEN={token}" in output
    assert state["haproxy"]["stats"] in output
    assert state["ready"] is True
    assert len(state["unseal_keys"]) == len(state["unseal_keys_b64"]) == 5

    codes = []
    for node in state["nodes"]:
        health = requests.get(node["api_addr"] + "/v1/sys/health", timeout=5)
        assert health.json()["initialized"] is True and health.json()["sealed"] is False, node
        codes.append(health.status_code)
    assert all(code in (200, 429, 473) for code in codes) and 200 in codes, codes
    assert requests.get(f"http://{state['consul']['address']}/v1/status/leader", timeout=5).json()
    # Consul's telemetry is on, for the shipped Prometheus job "consul".
    consul_metrics = requests.get(
        f"http://{state['consul']['address']}/v1/agent/metrics", params={"format": "prometheus"}, timeout=5
    )
    assert consul_metrics.status_code == 200 and "consul_raft_" in consul_metrics.text

    # A Vault client, pointed at the front door, with the root token: KV v2 at secret/.
    client = hvac.Client(url=front, token=token)
    client.secrets.kv.v2.create_or_update_secret(path="dev-cluster/check", secret={"answer": "42"})
    read = client.secrets.kv.v2.read_secret_version(path="dev-cluster/check", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"answer": "42"}
    routed = requests.get(front + "/v1/secret/data/dev-cluster/check", headers={"X-Vault-Token": token}, timeout=5)
    assert routed.headers["X-Strongroom-Route"].startswith("strongroom_read/")
    assert routed.headers["X-Strongroom-Node"] in {n["name"] for n in state["nodes"]}

    stats = requests.get(state["haproxy"]["stats"], timeout=5)
    assert stats.status_code == 200 and "strongroom_write" in stats.text
    metrics = requests.get(state["haproxy"]["metrics"], timeout=5)
    assert metrics.status_code == 200 and 'haproxy_server_status{proxy="strongroom_write"' in metrics.text


def test_detached_cluster_is_ready_usable_and_stops(tmp_path):
    directory = tmp_path / "cluster"
    started = subprocess.run(
        dev_cluster("--nodes", "3", "--detach", "--dir", str(directory)),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    state = {}
    try:
        assert started.returncode == 0, f"{started.stdout}\n{started.stderr}\n{logs(directory)}"
        path = directory / "cluster.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        state = json.loads(path.read_text())
        assert [n["name"] for n in state["nodes"]] == ["node1", "node2", "node3"]
        assert state["consul"]["address"] and state["consul"]["pid"]
        check_cluster(state, started.stdout)
        for node in state["nodes"]:
            config = Path(node["config"]).read_text()
            assert f'node_id      = "{node["name"]}"' in config and 'path    = "strongroom/"' in config

        again = subprocess.run(
            dev_cluster("--detach", "--dir", str(directory)), capture_output=True, text=True, timeout=60
        )
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        stopped = subprocess.run(
            dev_cluster("--stop", "--dir", str(directory)), capture_output=True, text=True, timeout=120
        )
    assert stopped.returncode == 0, stopped.stderr
    assert_all_gone(pids_of(state))


def consecutive_free_ports(count: int) -> int:
    """A base port with ``count`` free TCP+UDP ports after it (probed, so a race stays possible)."""
    for _ in range(50):
        base = free_port()
        if base + count >= 65536:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    tcp.bind(("127.0.0.1", port))
                    udp.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports")


def test_foreground_cluster_on_fixed_ports_stops_everything_on_sigterm(tmp_path):
    directory = tmp_path / "cluster"
    base = consecutive_free_ports(2 + 2 + 4)
    proc = subprocess.Popen(
        dev_cluster("--nodes", "2", "--workers", "1", "--base-port", str(base), "--dir", str(directory)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    state_file = directory / "cluster.json"
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(
                    f"dev-cluster exited with {proc.returncode}:\n{proc.stdout.read()}\n{logs(directory)}"
                )
            return state_file.exists() and json.loads(state_file.read_text())["ready"]

        wait_until(ready, START_TIMEOUT, "the dev cluster to be ready", interval=0.2, fatal=(AssertionError,))
        state = json.loads(state_file.read_text())
        assert state["haproxy"]["address"] == f"http://127.0.0.1:{base}"
        assert state["haproxy"]["stats"] == f"http://127.0.0.1:{base + 1}/stats"
        assert [n["api_addr"] for n in state["nodes"]] == [
            f"http://127.0.0.1:{base + 2}",
            f"http://127.0.0.1:{base + 3}",
        ]
        assert state["consul"]["address"] == f"127.0.0.1:{base + 4}"
        pids = pids_of(state)
        os.kill(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, output
        check_output = output.split("stopping the dev cluster")[0]
        assert f"export VAULT_ADDR=http://127.0.0.1:{base}" in check_output
        assert_all_gone(pids)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            subprocess.run(dev_cluster("--stop", "--dir", str(directory)), capture_output=True, timeout=120)


def test_stop_without_a_cluster_says_so(tmp_path):
    result = subprocess.run(dev_cluster("--stop", "--dir", str(tmp_path)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "nothing to stop" in result.stderr


def test_an_unusable_consul_binary_names_the_fix(tmp_path):
    env = {**os.environ, "CONSUL_BIN": str(tmp_path / "no-such-consul")}
    result = subprocess.run(
        dev_cluster("--detach", "--dir", str(tmp_path / "c")), capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 1 and "run `make deps`" in result.stderr
    assert not list((tmp_path / "c").glob("*.log")), "nothing may be started without consul"
