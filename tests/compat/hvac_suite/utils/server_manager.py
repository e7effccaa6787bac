"""Strongroom in place of hvac's ``tests/utils/server_manager.py``.

hvac's ``ServerManager`` starts ``vault server`` with a TLS config per test
class, initialises it with 5 shares / threshold 3 and unseals it.  This one keeps
the same interface (``client``, ``keys``, ``root_token``, ``unseal()``,
``initialize()``, ``restart_vault_cluster()``, ``get_active_vault_addresses()``)
over real Strongroom nodes (``strongroom server -config``, Consul storage on the
session's agent under a prefix of their own, plain HTTP on loopback), started
once per session and shared by every test class (``SuiteNodes``).

Differences from hvac's harness, all in the harness and none in the tests:

- one node (or one HA pair for the classes that set ``enable_vault_ha``) per
  session instead of one per class: classes run in file order and leave the
  node as they found it (hvac's tests clean up after themselves);
- no TLS (hvac's client certificates test requests, not Vault);
- an unsealed node on Consul is a standby until it takes the HA lock, so
  ``unseal()`` waits until a node is active (Vault's non-HA file storage is
  active at once);
- the shared client retries a 503 for a few seconds: an unsealed node on
  Consul answers "local node not active but active cluster node not found"
  until it holds the lock (as Vault on Consul does), and a few hvac tests unseal
  with ``submit_unseal_keys`` and write at once, as one can on Vault's file storage;
- the HA pair runs with ``disable_performance_standby = true``: hvac's HA
  tests expect Vault OSS's plain standby (429), Strongroom's default standby is
  a performance standby (473, as in Vault Enterprise).
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hvac
import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from tests.helpers.procs import ConsulAgent, StrongroomServer, free_port, wait_until


class StrongroomServerManager:
    """``node_count`` Strongroom nodes on one Consul prefix, driven like hvac's ``ServerManager``."""

    def __init__(self, consul: ConsulAgent, workdir: Path, node_count: int = 1, name: str = "hvac"):
        self.consul = consul
        self.workdir = workdir
        self.name = name
        self.ports = [free_port() for _ in range(node_count)]
        self.nodes: list[StrongroomServer] = []
        self.prefix = ""
        self.client: hvac.Client | None = None
        self.keys: list[str] = []
        self.root_token: str | None = None

    def start(self) -> None:
        """Start the nodes on a fresh, empty Consul prefix (hvac's harness starts a fresh Vault)."""
        self.prefix = f"hvac-suite-{uuid.uuid4().hex[:12]}/"
        extra = "unsafe_allow_api_audit_creation = true\n"
        if len(self.ports) > 1:
            extra += "disable_performance_standby = true\n"
        for index, port in enumerate(self.ports):
            node = StrongroomServer(
                self.workdir / f"{self.name}-{index}",
                self.consul.address,
                port,
                # The HA pair is started three times (hvac's HA tests restart it): one worker each.
                workers=2 if len(self.ports) == 1 else 1,
                prefix=self.prefix,
                node_id=f"{self.name}-{index}",
                extra=extra,
            )
            self.nodes.append(node)
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.start(), self.nodes))
        self.client = hvac.Client(url=self.nodes[0].url, timeout=30, session=_retrying_session())

    def stop(self) -> None:
        """Stop the nodes (by their pids) and delete their Consul prefix."""
        if self.client is not None:
            self.client.adapter.close()
            self.client = None
        nodes, self.nodes = self.nodes, []
        with ThreadPoolExecutor(max(len(nodes), 1)) as pool:
            list(pool.map(lambda node: node.stop(), nodes))
        if self.prefix:
            self.consul.client().kv.delete(self.prefix, recurse=True)
            self.prefix = ""

    def initialize(self) -> None:
        """``sys/init`` with hvac's 5 shares / threshold 3; records keys and root token."""
        assert self.client is not None
        if self.client.sys.is_initialized():
            raise RuntimeError(f"already initialized: {self.get_active_vault_addresses()}")
        result = self.client.sys.initialize(secret_shares=5, secret_threshold=3)
        self.root_token = self.client.token = result["root_token"]
        self.keys = result["keys"]

    def restart_vault_cluster(self, perform_init: bool = True) -> None:
        """Stop and start every node on fresh storage, as hvac's harness does (it restarts Consul too)."""
        self.stop()
        self.start()
        if perform_init:
            self.initialize()

    def get_active_vault_addresses(self) -> list[str]:
        return [node.url for node in self.nodes]

    def unseal(self) -> None:
        """Unseal every node with the recorded keys, then wait until one node is active."""
        for url in self.get_active_vault_addresses():
            client = hvac.Client(url=url, timeout=30)
            try:
                client.sys.submit_unseal_keys(self.keys)
            finally:
                client.adapter.close()
        wait_until(self._one_active, 30, f"one of {self.get_active_vault_addresses()} to become active")

    def _one_active(self) -> bool:
        return any(
            requests.get(f"{url}/v1/sys/health", timeout=2).status_code == 200
            for url in self.get_active_vault_addresses()
        )


def _retrying_session() -> requests.Session:
    """A session that retries a 503 (any method: a node that is not active ran
    nothing) with backoff for about five seconds, then hands the 503 back."""
    retry = Retry(
        total=None,
        connect=0,
        read=0,
        redirect=0,
        status=25,
        status_forcelist=[503],
        allowed_methods=None,
        backoff_factor=0.05,
        backoff_max=0.25,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


class SuiteNodes:
    """The managers the hvac test classes share, started on first use, stopped at session end."""

    def __init__(self, consul: ConsulAgent, workdir: Path):
        self.consul = consul
        self.workdir = workdir
        self._managers: dict[bool, StrongroomServerManager] = {}

    def manager(self, ha: bool) -> StrongroomServerManager:
        """The single node (``ha=False``) or the HA pair (``ha=True``), started, initialised and unsealed."""
        if ha not in self._managers:
            manager = StrongroomServerManager(
                self.consul, self.workdir, node_count=2 if ha else 1, name="hvac-ha" if ha else "hvac"
            )
            self._managers[ha] = manager
            manager.start()
            manager.initialize()
            manager.unseal()
        return self._managers[ha]

    def root_token_for(self, url: str) -> str:
        """The root token of the nodes serving ``url``."""
        for manager in self._managers.values():
            if url in manager.get_active_vault_addresses() and manager.root_token:
                return manager.root_token
        raise LookupError(f"no suite node serves {url}")

    def stop(self) -> None:
        while self._managers:
            self._managers.popitem()[1].stop()


_suite: SuiteNodes | None = None


def install(suite: SuiteNodes | None) -> None:
    """Called by the hvac_suite conftest's session fixture: the nodes the test classes will use."""
    global _suite
    _suite = suite


def suite() -> SuiteNodes:
    if _suite is None:
        raise RuntimeError("the hvac suite runs under pytest (tests/compat/hvac_suite/conftest.py starts its nodes)")
    return _suite
