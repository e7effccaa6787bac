"""Strongroom nodes: ``strongroom server -config`` with an HCL file of the
test's own (``StrongroomServer``, ``StrongroomServerWithListener``).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import requests

from tests.helpers.procs.base import Process


def strongroom_binary() -> str:
    candidate = Path(sys.executable).parent / "strongroom"
    if candidate.exists():
        return str(candidate)
    raise RuntimeError("strongroom is not installed in this interpreter's environment: run `make deps`")


class StrongroomServer(Process):
    """One node: writes its HCL, starts ``strongroom server -config``, waits until it answers.

    Config and log (``<node_id>.hcl``, ``<node_id>.log``) are in ``workdir``,
    which the caller owns: ``stop()`` leaves it.  A stopped node can be started
    again.  The SIGKILL after ``stop``'s deadline goes to the process group the
    node leads, gunicorn included.
    """

    name = "strongroom"
    stop_timeout = 15.0
    kill_group = True

    def __init__(
        self,
        workdir: Path,
        consul_address: str | None,
        port: int,
        *,
        workers: int = 2,
        prefix: str = "strongroom/",
        node_id: str = "node",
        tls: tuple[str, str] | None = None,
        extra: str = "",
        storage: str | None = None,
        host: str = "127.0.0.1",
        netns: str | None = None,
    ):
        self.workdir = Path(workdir)
        # A node in a network namespace of the test's own (see tests/helpers/netns.py).
        self.netns = netns
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.host = host
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{port}"
        if storage is None:
            storage = f'storage "consul" {{\n  address = "{consul_address}"\n  path = "{prefix}"\n}}\n'
        if tls:
            listener = (
                f'listener "tcp" {{\n  address = "{host}:{port}"\n  tls_cert_file = "{tls[0]}"\n'
                f'  tls_key_file = "{tls[1]}"\n}}\n'
            )
        else:
            listener = f'listener "tcp" {{\n  address = "{host}:{port}"\n  tls_disable = true\n}}\n'
        self.config_path = self.workdir / f"{node_id}.hcl"
        self.config_path.write_text(
            storage + listener + f'api_addr = "{self.url}"\nnode_id = "{node_id}"\nworkers = {workers}\n' + extra
        )
        self.verify = tls[0] if tls else True
        super().__init__(self.workdir / f"{node_id}.log")

    def start(self, timeout: float = 30.0) -> StrongroomServer:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self._spawn(prefix + [strongroom_binary(), "server", "-config", str(self.config_path)], cwd=self.workdir)

        def answering() -> bool:
            return requests.get(self.url + "/v1/sys/health", timeout=1, verify=self.verify).status_code in (
                200,
                429,
                473,
                501,
                503,
            )

        self._wait_ready(answering, timeout, f"strongroom on {self.url}")
        return self

    def _startup_output(self) -> str:
        # The whole log: a failed start's first error can be far above its end
        # (a traceback per gunicorn worker).
        return f"log:\n{self.log()}"

    def log(self) -> str:
        """Everything the node has printed (every start since ``workdir`` was made)."""
        return self.log_text()

    def kill(self) -> None:
        """kill -9 the node core (its gunicorn dies with it)."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    # --- API helpers -------------------------------------------------------------

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["X-Vault-Token"] = token
        return requests.request(
            method, f"{self.url}/v1/{path.lstrip('/')}", headers=headers, timeout=10, verify=self.verify, **kwargs
        )

    def init(self, shares: int = 3, threshold: int = 2) -> dict:
        result = self.api("PUT", "sys/init", json={"secret_shares": shares, "secret_threshold": threshold})
        result.raise_for_status()
        return result.json()

    def unseal(self, keys: list[str]) -> dict:
        status = {}
        for key in keys:
            status = self.api("PUT", "sys/unseal", json={"key": key}).json()
            if not status.get("sealed", True):
                break
        return status


class StrongroomServerWithListener(StrongroomServer):
    """A ``StrongroomServer`` whose ``listener "tcp"`` block carries extra
    settings, e.g. ``listener_options={"max_request_size": 4096}`` (values are
    written as HCL literals: ints and bools bare, strings quoted)."""

    def __init__(
        self,
        workdir: Path,
        consul_address: str | None,
        port: int,
        *,
        listener_options: dict[str, object] | None = None,
        **kwargs,
    ):
        super().__init__(workdir, consul_address, port, **kwargs)
        lines = "".join(f"  {key} = {_hcl_literal(value)}\n" for key, value in (listener_options or {}).items())
        text = self.config_path.read_text()
        start = text.index('listener "tcp" {')
        end = text.index("\n}\n", start) + 1
        self.config_path.write_text(text[:end] + lines + text[end:])


def _hcl_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
