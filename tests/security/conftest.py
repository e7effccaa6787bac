"""Security tier: the findings of issue 10, reproduced against real processes.

Started once per session and shared by the whole tier (each test uses names of
its own):

* ``sec_node``: one ``strongroom server`` (two gunicorn workers) on the
  session's real Consul, initialised and unsealed, KV v2 at ``secret/`` and
  KV v1 at ``kv1/``; its listener reads headers within 1 s and whole requests
  within 3 s, a file audit device ``sec/`` is declared in its configuration,
  and ``unsafe_allow_api_audit_creation`` keeps its default (false);
* ``unsafe_node``: a second node whose configuration sets
  ``unsafe_allow_api_audit_creation = true`` and ``audit_file_directory``, for
  what an operator who opted in may still not do with an audit device;
* ``sec_cluster``: two nodes (one active, one performance standby) behind the
  real HAProxy rendered by ``strongroom.haproxy``, KV v2 at ``secret/``.

Every process is stopped by its pid (``tests.helpers.procs``); the Consul
prefixes are deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.cluster import StrongroomCluster
from tests.helpers.procs import ConsulAgent, HAProxyProcess, StrongroomServerWithListener, free_port, wait_until
from tests.security.support import Answer, send

# Quick to trip for the slowloris test; long enough for every honest request here.
READ_HEADER_TIMEOUT = 1.0
LISTENER_OPTIONS = {"http_read_header_timeout": "1s", "http_read_timeout": "3s"}


@dataclass
class Target:
    """Somewhere to send raw requests: a node or HAProxy's front door, and the root token."""

    url: str
    root_token: str

    def send(self, method: str, raw_path: str, *, token: str | None = None, **kwargs) -> Answer:
        """A request with ``raw_path`` sent as spelled; root token unless told otherwise ("" for none)."""
        return send(self.url, method, raw_path, token=self.root_token if token is None else token, **kwargs)

    def ok(self, method: str, path: str, body=None, token: str | None = None) -> Answer:
        """A request on ``/v1/<path>`` that must succeed (2xx)."""
        answer = self.send(method, "/v1/" + path, body=body, token=token)
        assert 200 <= answer.status < 300, (method, path, answer)
        return answer


@dataclass
class SecNode(Target):
    """A running node of this tier."""

    server: StrongroomServerWithListener
    keys: list[str]
    workdir: Path
    audit_log: Path

    @property
    def audit_dir(self) -> Path:
        """Where this node's file audit logs may be (``audit_file_directory`` on ``unsafe_node``)."""
        return self.audit_log.parent

    def log(self) -> str:
        """Everything the node (gunicorn and its workers included) has printed."""
        return self.server.log()


def _start_node(consul: ConsulAgent, workdir: Path, name: str, extra: str, audit_dir: Path | None = None) -> SecNode:
    uid = uuid.uuid4().hex[:10]
    prefix = f"sec-{uid}/"
    storage = (
        f'storage "consul" {{\n  address = "{consul.address}"\n  path = "{prefix}"\n'
        f'  service = "strongroom-sec-{uid}"\n}}\n'
    )
    audit_log = (audit_dir or workdir) / "audit.log"
    extra = f'audit "file" "sec" {{\n  options {{\n    file_path = "{audit_log}"\n  }}\n}}\n' + extra
    server = StrongroomServerWithListener(
        workdir,
        None,
        free_port(),
        workers=2,
        node_id=name,
        storage=storage,
        extra=extra,
        listener_options=LISTENER_OPTIONS,
    )
    server.start()
    init = server.init(shares=3, threshold=2)
    status = server.unseal(init["keys"][:2])
    assert status.get("sealed") is False, status
    node = SecNode(server.url, init["root_token"], server, init["keys"], workdir, audit_log)
    wait_until(lambda: node.send("GET", "/v1/sys/health").status == 200, 15, f"{name} to become active")
    return node


def _stop_node(node: SecNode | None, consul: ConsulAgent, prefix: str) -> None:
    if node is not None:
        node.server.stop()
    consul.client().kv.delete(prefix, recurse=True)


@pytest.fixture(scope="session")
def sec_node(consul_agent: ConsulAgent, tmp_path_factory) -> Iterator[SecNode]:
    """The tier's default node (see the module docstring)."""
    workdir = tmp_path_factory.mktemp("sec-node")
    node = None
    try:
        node = _start_node(consul_agent, workdir, "sec", "")
        node.ok("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        node.ok("POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
        yield node
    finally:
        prefix = _prefix_of(node)
        _stop_node(node, consul_agent, prefix)


@pytest.fixture(scope="session")
def unsafe_node(consul_agent: ConsulAgent, tmp_path_factory) -> Iterator[SecNode]:
    """A node whose operator allowed audit devices to be created over the API,
    with file audit logs confined to ``audit_dir`` (``audit_file_directory``)."""
    workdir = tmp_path_factory.mktemp("unsafe-node")
    audit_dir = workdir / "audit"
    audit_dir.mkdir(mode=0o700)
    node = None
    try:
        node = _start_node(
            consul_agent,
            workdir,
            "unsafe",
            f'unsafe_allow_api_audit_creation = true\naudit_file_directory = "{audit_dir}"\n',
            audit_dir=audit_dir,
        )
        yield node
    finally:
        _stop_node(node, consul_agent, _prefix_of(node))


def _prefix_of(node: SecNode | None) -> str:
    if node is None:
        return "sec-never-started/"
    text = node.server.config_path.read_text()
    return text.split('path = "', 1)[1].split('"', 1)[0]


@dataclass
class SecCluster:
    """Two real nodes on Consul behind the real HAProxy: ``front`` is the door."""

    nodes: StrongroomCluster
    proxy: HAProxyProcess
    front: Target

    def node_target(self, node) -> Target:
        return Target(node.url, self.nodes.root_token)

    def active(self) -> Target:
        return self.node_target(self.nodes.active())


@pytest.fixture(scope="session")
def sec_cluster(consul_agent: ConsulAgent, tmp_path_factory) -> Iterator[SecCluster]:
    """One active node and one performance standby behind HAProxy, for the whole tier."""
    cluster = StrongroomCluster(tmp_path_factory.mktemp("sec-cluster"), consul_agent.address, n=2, workers=1)
    proxy = None
    try:
        cluster.start()
        proxy = HAProxyProcess(
            [{"name": n.config_path.stem, "address": f"127.0.0.1:{n.port}"} for n in cluster.nodes]
        ).start()
        active = cluster.active()
        proxy.wait_servers_up("strongroom_write", {active.config_path.stem})
        proxy.wait_servers_up("strongroom_read", {n.config_path.stem for n in cluster.nodes})
        secure = SecCluster(cluster, proxy, Target(proxy.url, cluster.root_token))
        secure.front.ok("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        yield secure
    finally:
        if proxy is not None:
            proxy.stop()
        cluster.stop()
        consul_agent.client().kv.delete(cluster.prefix, recurse=True)


@pytest.fixture(params=["node", "haproxy"])
def target(request) -> Target:
    """Each test that takes it runs twice: on ``sec_node`` itself, and on the
    cluster through HAProxy's front door."""
    if request.param == "node":
        return request.getfixturevalue("sec_node")
    return request.getfixturevalue("sec_cluster").front


@pytest.fixture
def unique() -> Callable[[str], str]:
    """``unique("kv")`` -> ``kv-1a2b3c4d``: names no other test uses."""
    return lambda stem: f"{stem}-{uuid.uuid4().hex[:8]}"
