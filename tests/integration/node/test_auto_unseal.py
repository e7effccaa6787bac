"""Auto-unseal with ``seal "transit"`` on real clusters (issue 14, item 6).

The unsealer is a real, separate server: OpenBao (``bao server`` with its
own raft storage, so that it can be stopped and started again with the same
transit key: a ``-dev`` server forgets its keys when it stops), or a second
Strongroom cluster's transit engine.  The auto-unsealed cluster is two real
Strongroom nodes on the session's real Consul.  Every process is stopped by
its own pid.
"""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers.cluster import StrongroomCluster
from tests.helpers.load import WriteLoad
from tests.helpers.procs import Process, StrongroomServer, free_port, openbao_binary, wait_until


class OpenBaoUnsealer(Process):
    """A real ``bao server`` with raft storage in ``workdir``: initialised with one
    share, unsealed, a transit key ``autounseal`` at ``transit/``.  ``stop()`` and
    ``start()`` again keep its data (``start`` unseals it with the stored share)."""

    name = "openbao unsealer"
    stop_timeout = 15.0

    def __init__(self, workdir: Path):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "raft").mkdir(exist_ok=True)
        self.port, cluster_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "bao.hcl"
        self.config.write_text(
            f'storage "raft" {{\n  path = "{workdir / "raft"}"\n  node_id = "unsealer"\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n'
            f'  cluster_address = "127.0.0.1:{cluster_port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "{self.url}"\ncluster_addr = "http://127.0.0.1:{cluster_port}"\n'
        )
        self.unseal_key = ""
        self.root_token = ""
        super().__init__(workdir / "bao.log")

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"X-Vault-Token": self.root_token} if self.root_token else {}
        return requests.request(method, f"{self.url}/v1/{path}", headers=headers, timeout=10, **kwargs)

    def start(self) -> OpenBaoUnsealer:
        env = {"HOME": str(self.workdir), "PATH": "/usr/bin:/bin"}
        self._spawn([openbao_binary(), "server", f"-config={self.config}"], cwd=self.workdir, env=env)
        self._wait_ready(lambda: self.api("GET", "sys/seal-status").status_code == 200, 30, "bao to answer")
        if not self.unseal_key:
            init = self.api("PUT", "sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
            self.unseal_key, self.root_token = init["keys"][0], init["root_token"]
        self.api("PUT", "sys/unseal", json={"key": self.unseal_key})
        self._wait_ready(lambda: self.api("GET", "sys/health").status_code == 200, 30, "bao to become active")
        if self.api("GET", "transit/keys/autounseal").status_code != 200:
            assert self.api("POST", "sys/mounts/transit", json={"type": "transit"}).status_code == 204
            assert self.api("POST", "transit/keys/autounseal", json={}).status_code in (200, 204)
        return self


def seal_block(address: str, token: str) -> str:
    return (
        f'seal "transit" {{\n  address = "{address}"\n  token = "{token}"\n'
        f'  key_name = "autounseal"\n  mount_path = "transit/"\n}}\n'
    )


@pytest.fixture(scope="module")
def unsealer(tmp_path_factory):
    bao = OpenBaoUnsealer(tmp_path_factory.mktemp("unsealer"))
    with bao:
        yield bao


def status(node: StrongroomServer) -> dict:
    return node.api("GET", "sys/seal-status").json()


def unsealed(node: StrongroomServer) -> bool:
    try:
        return status(node)["sealed"] is False
    except (requests.RequestException, ValueError):
        return False


def restart(node: StrongroomServer) -> None:
    node.stop()
    node.start()


def init_auto(cluster: StrongroomCluster, shares: int = 3, threshold: int = 2) -> dict:
    """Start every node, initialise through the first with recovery shares; no unseal call anywhere."""
    for node in cluster.nodes:
        node.start()
    before = status(cluster.nodes[0])
    assert (before["type"], before["recovery_seal"], before["initialized"]) == ("transit", True, False)
    answer = cluster.nodes[0].api("PUT", "sys/init", json={"recovery_shares": shares, "recovery_threshold": threshold})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    cluster.root_token = body["root_token"]
    for node in cluster.nodes:
        wait_until(lambda node=node: unsealed(node), 20, f"{node.url} to unseal itself")
    cluster.wait_settled(20)
    return body


@pytest.fixture
def auto_cluster(tmp_path, consul_agent, unsealer):
    cluster = StrongroomCluster(
        tmp_path, consul_agent.address, n=2, extra=seal_block(unsealer.url, unsealer.root_token)
    )
    try:
        yield cluster
    finally:
        cluster.stop()


def _no_keys_in_logs(cluster: StrongroomCluster, *secrets: str) -> None:
    for node in cluster.nodes:
        log = node.log()
        for secret in secrets:
            assert secret not in log, f"{secret[:6]}... in {node.config_path.name}'s log"


@pytest.mark.slow
def test_cluster_unseals_itself_after_init_and_restarts_under_load(auto_cluster, unsealer):
    body = init_auto(auto_cluster)
    assert body["keys"] == [] and body["keys_base64"] == [] and len(body["recovery_keys"]) == 3
    for node in auto_cluster.nodes:
        seen = status(node)
        assert (seen["type"], seen["recovery_seal"], seen["sealed"], seen["t"], seen["n"]) == (
            "transit",
            True,
            False,
            2,
            3,
        )
        # The loop says so at its next tick (within a second), also on the node sys/init unsealed.
        wait_until(
            lambda node=node: "auto-unseal: unsealed with the transit seal" in node.log(), 10, "the unseal logged"
        )
    active = auto_cluster.active()
    standby = next(node for node in auto_cluster.nodes if node is not active)
    assert auto_cluster.api(active, "POST", "sys/mounts/kv", json={"type": "kv"}).status_code == 204

    # A standby restarted: back unsealed with nobody's help.
    restart(standby)
    wait_until(lambda: unsealed(standby), 20, "the restarted standby to unseal itself")
    auto_cluster.wait_settled(20)

    # The active node restarted under a steady write load sent to the other node: every
    # acknowledged write is there afterwards, and the restarted node unsealed itself.
    load = WriteLoad(standby.url, auto_cluster.root_token, mount="kv").start()
    try:
        wait_until(lambda: len(load.acked) >= 20, 20, "writes before the restart")
        restarted_at = time.monotonic()
        restart(active)
        wait_until(lambda: unsealed(active), 20, "the restarted active node to unseal itself")
        auto_cluster.wait_settled(20)
        wait_until(lambda: load.acked_since(restarted_at) >= 20, 30, "writes after the restart")
    finally:
        load.stop()

    def read(key: str) -> str | None:
        answer = auto_cluster.api(auto_cluster.active(), "GET", f"kv/{key}")
        return answer.json()["data"]["value"] if answer.status_code == 200 else None

    assert load.unacknowledged_or_wrong(read) == []
    assert len(load.acked) >= 40
    _no_keys_in_logs(auto_cluster, unsealer.root_token, *body["recovery_keys"], *body["recovery_keys_base64"])


@pytest.mark.slow
def test_recovery_keys_rekey_generate_root_and_unseal_after_a_manual_seal(auto_cluster):
    body = init_auto(auto_cluster)
    active = auto_cluster.active()
    token = auto_cluster.root_token

    # sys/unseal: nothing to do while unsealed, and after a manual seal only recovery keys work.
    standby = next(node for node in auto_cluster.nodes if node is not active)
    assert standby.api("PUT", "sys/seal", token=token).status_code == 204
    assert status(standby)["sealed"] is True
    wrong = [uuid.uuid4().hex * 2 + "01", uuid.uuid4().hex * 2 + "02"]
    standby.api("PUT", "sys/unseal", json={"key": wrong[0]})
    refused = standby.api("PUT", "sys/unseal", json={"key": wrong[1]})
    assert refused.status_code == 400 and "recovery key" in refused.json()["errors"][0], refused.text
    assert status(standby)["sealed"] is True
    for key in body["recovery_keys"][:2]:
        standby.api("PUT", "sys/unseal", json={"key": key})
    assert status(standby)["sealed"] is False

    # Rekey of the recovery keys (through the standby: forwarded to the active node).
    init = auto_cluster.api(
        standby, "PUT", "sys/rekey-recovery-key/init", json={"secret_shares": 4, "secret_threshold": 3}
    )
    assert init.status_code == 200, init.text
    done: dict = {}
    for key in body["recovery_keys"][1:3]:
        done = auto_cluster.api(
            active, "PUT", "sys/rekey-recovery-key/update", json={"key": key, "nonce": init.json()["nonce"]}
        ).json()
    assert done.get("complete") is True and len(done["keys"]) == 4, done
    assert (status(active)["t"], status(active)["n"]) == (3, 4)
    assert (status(standby)["t"], status(standby)["n"]) == (3, 4)

    # generate-root (the CLI's way: bao operator generate-root) with the NEW recovery keys.
    attempt = auto_cluster.api(active, "PUT", "sys/generate-root/attempt", json={}).json()
    assert attempt["required"] == 3
    result: dict = {}
    for key in done["keys"][:3]:
        result = auto_cluster.api(
            active, "PUT", "sys/generate-root/update", json={"key": key, "nonce": attempt["nonce"]}
        ).json()
    assert result["complete"] is True, result
    from strongroom.core.recovery import decode_root_token

    new_root = decode_root_token(result["encoded_token"], attempt["otp"])
    lookup = active.api("GET", "auth/token/lookup-self", token=new_root)
    assert lookup.status_code == 200 and lookup.json()["data"]["policies"] == ["root"]
    # The old recovery keys generate nothing any more.
    attempt = auto_cluster.api(active, "PUT", "sys/generate-root/attempt", json={}).json()
    failed = None
    for key in body["recovery_keys"][:3]:
        failed = auto_cluster.api(
            active, "PUT", "sys/generate-root/update", json={"key": key, "nonce": attempt["nonce"]}
        )
    assert failed is not None and failed.status_code == 400, failed.text
    # sys/rekey (unseal keys) has nothing to rekey under an auto seal.
    barrier = auto_cluster.api(active, "PUT", "sys/rekey/init", json={"secret_shares": 1, "secret_threshold": 1})
    assert barrier.status_code == 400 and "rekey-recovery-key" in barrier.json()["errors"][0]
    _no_keys_in_logs(auto_cluster, new_root, *done["keys"], *body["recovery_keys"])


@pytest.mark.slow
def test_node_waits_sealed_while_the_unsealer_is_down_then_unseals(auto_cluster, unsealer):
    init_auto(auto_cluster)
    node = auto_cluster.nodes[1]
    node.stop()
    unsealer.stop()
    try:
        node.start()
        wait_until(
            lambda: "auto-unseal: node sealed, retrying every 1s: transit seal: unsealer" in node.log(),
            20,
            "the node to say why it is sealed",
        )
        # It keeps waiting sealed (not crashing, not unsealed) while the unsealer is down.
        time.sleep(1.5)
        assert node.running() and status(node)["sealed"] is True
        assert "unreachable" in node.log()
    finally:
        unsealer.start()
    wait_until(lambda: unsealed(node), 20, "the node to unseal once the unsealer is back")
    auto_cluster.wait_settled(20)
    # One line per reason, not one per try: the unreachable unsealer is said
    # once; an unsealer that answers while still sealed itself (just started
    # again) is another reason, said once too.
    marker = "auto-unseal: node sealed, retrying every 1s: transit"
    said = [line[line.index(marker) :] for line in node.log().splitlines() if marker in line]
    assert len([line for line in said if "unreachable" in line]) == 1, said
    assert len(said) == len(set(said)), said


class StrongroomUnsealer:
    """A second Strongroom cluster (one node, Shamir-sealed) whose transit engine is the unsealer."""

    def __init__(self, workdir: Path, consul_address: str):
        self.cluster = StrongroomCluster(workdir, consul_address, n=1)

    def start(self) -> StrongroomUnsealer:
        self.cluster.start()
        node = self.cluster.nodes[0]
        assert self.cluster.api(node, "POST", "sys/mounts/transit", json={"type": "transit"}).status_code == 204
        assert self.cluster.api(node, "POST", "transit/keys/autounseal", json={}).status_code in (200, 204)
        self.url = node.url
        return self


@pytest.mark.slow
def test_a_second_strongroom_cluster_as_the_unsealer(tmp_path, consul_agent):
    unsealer = StrongroomUnsealer(tmp_path / "unsealer", consul_agent.address)
    cluster = None
    try:
        unsealer.start()
        cluster = StrongroomCluster(
            tmp_path / "sealed",
            consul_agent.address,
            n=2,
            extra=seal_block(unsealer.url, unsealer.cluster.root_token),
        )
        body = init_auto(cluster, 1, 1)
        assert len(body["recovery_keys"]) == 1
        active = cluster.active()
        assert cluster.api(active, "POST", "sys/mounts/kv", json={"type": "kv"}).status_code == 204
        assert cluster.api(active, "PUT", "kv/a", json={"value": "kept"}).status_code == 204
        # The stored root key is an envelope whose data key only the unsealer's transit key opens.
        stored = requests.get(
            f"http://{consul_agent.address}/v1/kv/{cluster.prefix}core/root-key?raw", timeout=5
        ).json()
        opened = unsealer.cluster.api(
            unsealer.cluster.nodes[0], "POST", "transit/decrypt/autounseal", json={"ciphertext": stored["wrapped_key"]}
        )
        assert opened.status_code == 200 and len(base64.b64decode(opened.json()["data"]["plaintext"])) == 32
        for node in cluster.nodes:
            restart(node)
        for node in cluster.nodes:
            wait_until(lambda node=node: unsealed(node), 20, f"{node.url} to unseal itself")
        active = cluster.wait_settled(20)
        assert cluster.api(active, "GET", "kv/a").json()["data"] == {"value": "kept"}
        counted = cluster.api(active, "GET", "sys/seal-status").json()
        assert counted["type"] == "transit" and counted["recovery_seal"] is True
    finally:
        if cluster is not None:
            cluster.stop()
        unsealer.cluster.stop()
