"""A Strongroom cluster of real nodes on one Consul, for the cluster tier.

Composes ``procs.StrongroomServer`` (which starts and stops the processes by
pid); each cluster gets its own storage prefix and service name so clusters of
different tests never meet in Consul.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.helpers.pki import CertificateAuthority
from tests.helpers.procs import StrongroomServer, free_port, wait_until


class StrongroomCluster:
    """``n`` nodes sharing one prefix: start, initialise, unseal, find the active node."""

    def __init__(
        self,
        workdir: Path,
        consul_address: str,
        n: int = 3,
        workers: int = 2,
        extra_storage: str = "",
        extra: str = "",
        consul_addresses: list[str] | None = None,
        placement: list[tuple[str, str | None]] | None = None,
        ca: CertificateAuthority | None = None,
    ):
        """``placement`` gives each node its ``(listen host, network namespace or None)``;
        with ``ca`` every listener has TLS (a certificate ``ca`` issues) and the nodes
        verify each other with ``cluster_ca_file`` when they forward."""
        self.uid = uuid.uuid4().hex[:8]
        self.prefix = f"sr-{self.uid}/"
        self.service = f"strongroom-{self.uid}"
        self.nodes: list[StrongroomServer] = []
        for i in range(n):
            address = consul_addresses[i % len(consul_addresses)] if consul_addresses else consul_address
            storage = (
                f'storage "consul" {{\n  address = "{address}"\n  path = "{self.prefix}"\n'
                f'  service = "{self.service}"\n{extra_storage}}}\n'
            )
            host, netns = placement[i] if placement else ("127.0.0.1", None)
            tls, node_extra = None, extra
            if ca is not None:
                cert, key = ca.issue(f"node{i}-{self.uid}", [host, "localhost"])
                tls = (str(cert), str(key))
                node_extra = f'cluster_ca_file = "{ca.ca_file}"\n' + extra
            self.nodes.append(
                StrongroomServer(
                    Path(workdir) / f"node{i}",
                    None,
                    free_port(),
                    workers=workers,
                    node_id=f"n{i}-{self.uid}",
                    storage=storage,
                    extra=node_extra,
                    tls=tls,
                    host=host,
                    netns=netns,
                )
            )
            if ca is not None:
                self.nodes[-1].verify = str(ca.ca_file)
        self.root_token = ""
        self.keys: list[str] = []

    def start(self) -> StrongroomCluster:
        """Start every node, initialise through the first and unseal the first
        before the others, so the first node becomes the active one."""
        try:
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(lambda node: node.start(), self.nodes))
            init = self.nodes[0].init(3, 2)
            self.root_token, self.keys = init["root_token"], init["keys"]
            self.nodes[0].unseal(self.keys[:2])
            wait_until(lambda: self.health(self.nodes[0]) == 200, 10, "the first node to become active")
            for node in self.nodes[1:]:
                node.unseal(self.keys[:2])
            self.wait_settled()
        except BaseException:
            self.stop()  # a failed start leaves no process behind
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def health(self, node: StrongroomServer) -> int:
        try:
            return node.api("GET", "sys/health").status_code
        except Exception:
            return 0

    def wait_settled(self, timeout: float = 15.0, expect_nodes: list[StrongroomServer] | None = None):
        """Exactly one active node among ``expect_nodes`` (default: all), the rest performance standbys."""
        nodes = expect_nodes or self.nodes

        def settled():
            codes = [self.health(n) for n in nodes]
            return codes.count(200) == 1 and all(c in (200, 473, 429) for c in codes)

        wait_until(settled, timeout, "exactly one active node")
        return self.active()

    def active(self) -> StrongroomServer | None:
        for node in self.nodes:
            if self.health(node) == 200:
                return node
        return None

    def standbys(self) -> list[StrongroomServer]:
        active = self.active()
        return [n for n in self.nodes if n is not active and self.health(n) in (429, 473)]

    def api(self, node: StrongroomServer, method: str, path: str, **kwargs):
        return node.api(method, path, token=kwargs.pop("token", self.root_token), **kwargs)
