"""An in-memory Strongroom node behind Falcon's TestClient, for unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import strongroom.api  # noqa: F401  (LIST before Falcon; tests/conftest.py imports it first)
from strongroom.api.app import create_app
from strongroom.auth.methods import AUTH_TYPES
from strongroom.core.core import Core
from strongroom.core.seal import SealManager
from strongroom.engines import ENGINE_TYPES
from strongroom.storage.inmem import InmemBackend
from tests.helpers.vault_client import VaultTestClient


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Node:
    """An in-memory node: storage, seal, core and a TestClient on its app.

    ``backends`` is the engine catalog its core mounts from (the built-in types,
    as the server wiring gives them), ``auth_backends`` its auth method catalog."""

    backends = ENGINE_TYPES
    auth_backends = AUTH_TYPES

    def __init__(self, max_request_size: int = 32 * 1024 * 1024):
        self.clock = FakeClock()
        self.backend = InmemBackend()
        self.seal = SealManager(self.backend, self.clock, storage_type="inmem")
        self.core = Core(
            self.backend, self.seal, backends=self.backends, auth_backends=self.auth_backends, clock=self.clock
        )
        self.client = VaultTestClient(create_app(self.core, node_id="unit", max_request_size=max_request_size))
        self.root_token = ""
        self.keys: list[str] = []

    def init(self, shares: int = 3, threshold: int = 2) -> dict:
        result = self.client.simulate_put("/v1/sys/init", json={"secret_shares": shares, "secret_threshold": threshold})
        assert result.status_code == 200, result.text
        self.root_token = result.json["root_token"]
        self.keys = result.json["keys"]
        return result.json

    def unseal(self) -> None:
        status = self.seal.status()
        for key in self.keys[: status["t"]]:
            self.client.simulate_put("/v1/sys/unseal", json={"key": key})
        assert not self.seal.status()["sealed"]

    def request(self, method: str, path: str, token: str | None = None, **kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        token = self.root_token if token is None else token
        if token:
            headers["X-Vault-Token"] = token
        return self.client.simulate_request(method=method, path="/v1/" + path.lstrip("/"), headers=headers, **kwargs)

    def snapshot(self) -> dict:
        """Every stored key and value, to prove a rejected request changed nothing."""
        return dict(self.backend._data)
