"""Compatibility tier: hvac, the real Vault client, against one real node.

One ``strongroom server -config`` node (two gunicorn workers, Consul storage on
the session's agent under a prefix of its own) is started, initialised with 3
shares / threshold 2 and unsealed once per session.  Tests that seal it unseal it
again before they return; tests that change shared tables use unique names.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import hvac
import pytest

from tests.compat.support import MAX_REQUEST_SIZE, wait_active
from tests.helpers.procs import ConsulAgent, StrongroomServerWithListener, free_port


@dataclass
class CompatNode:
    """The running node, its unseal keys and its root token."""

    server: StrongroomServerWithListener
    keys: list[str]
    root_token: str

    @property
    def url(self) -> str:
        return self.server.url

    clients: list[hvac.Client] = field(default_factory=list)

    def client(self, token: str | None = None) -> hvac.Client:
        """An hvac client for this node (root token unless told otherwise; ``""`` for none)."""
        client = hvac.Client(url=self.url, token=self.root_token if token is None else token, timeout=15)
        self.clients.append(client)
        return client

    def close_clients(self) -> None:
        """Close the clients' keep-alive connections (an open one holds up the
        node's graceful shutdown for its whole drain timeout)."""
        while self.clients:
            self.clients.pop().adapter.close()

    def unseal(self) -> None:
        """Unseal with the threshold of shares if it is sealed, then wait until
        the node is active (as in Vault, an unsealed HA node is a standby until
        it holds the lock)."""
        client = self.client()
        if client.sys.is_sealed():
            client.sys.submit_unseal_keys(self.keys[:2])
        assert not client.sys.is_sealed()
        wait_active(self.url)


@pytest.fixture(scope="session")
def compat_node(consul_agent: ConsulAgent, tmp_path_factory) -> Iterator[CompatNode]:
    """A real, initialised and unsealed node on Consul for the whole compat tier."""
    prefix = f"compat-{uuid.uuid4().hex[:12]}/"
    server = StrongroomServerWithListener(
        tmp_path_factory.mktemp("compat-node"),
        consul_agent.address,
        free_port(),
        workers=2,
        prefix=prefix,
        node_id="compat",
        listener_options={"max_request_size": MAX_REQUEST_SIZE},
        # hvac's enable_audit_device is part of the surface under test (OpenBao needs the same setting).
        extra="unsafe_allow_api_audit_creation = true\n",
    )
    try:
        server.start()
        init = server.init(shares=3, threshold=2)
        node = CompatNode(server, init["keys"], init["root_token"])
        status = server.unseal(init["keys"][:2])
        assert status.get("sealed") is False, status
        wait_active(server.url)
        yield node
    finally:
        server.stop()
        consul_agent.client().kv.delete(prefix, recurse=True)


@pytest.fixture(autouse=True)
def _close_compat_clients(request) -> Iterator[None]:
    yield
    if "compat_node" in request.fixturenames:
        request.getfixturevalue("compat_node").close_clients()


@pytest.fixture
def vault(compat_node: CompatNode) -> hvac.Client:
    """hvac with the root token."""
    return compat_node.client()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """``unique("kv")`` -> ``kv-1a2b3c4d``: names no other test uses."""
    return lambda stem: f"{stem}-{uuid.uuid4().hex[:8]}"
