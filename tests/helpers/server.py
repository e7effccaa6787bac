"""Starting real ``strongroom server`` processes for the integration tiers.

Every process is started in its own session and stopped by its process id
(SIGTERM, then SIGKILL of its process group after a deadline).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def strongroom_binary() -> str:
    candidate = Path(sys.executable).parent / "strongroom"
    if candidate.exists():
        return str(candidate)
    raise RuntimeError("strongroom is not installed in this interpreter's environment: run `make deps`")


def wait_for(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the predicate may race a starting process
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {message} (last error: {last_error!r})")


class StrongroomServer:
    """One node: writes its HCL, starts ``strongroom server -config``, waits until it answers."""

    def __init__(self, workdir: Path, consul_address: str | None, port: int, *, workers: int = 2,
                 prefix: str = "strongroom/", node_id: str = "node", tls: tuple[str, str] | None = None,
                 extra: str = "", storage: str | None = None, host: str = "127.0.0.1"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.host = host
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{port}"
        if storage is None:
            storage = f'storage "consul" {{\n  address = "{consul_address}"\n  path = "{prefix}"\n}}\n'
        if tls:
            listener = (f'listener "tcp" {{\n  address = "{host}:{port}"\n  tls_cert_file = "{tls[0]}"\n'
                        f'  tls_key_file = "{tls[1]}"\n}}\n')
        else:
            listener = f'listener "tcp" {{\n  address = "{host}:{port}"\n  tls_disable = true\n}}\n'
        self.config_path = self.workdir / f"{node_id}.hcl"
        self.config_path.write_text(
            storage + listener + f'api_addr = "{self.url}"\nnode_id = "{node_id}"\nworkers = {workers}\n' + extra)
        self.log_path = self.workdir / f"{node_id}.log"
        self.proc: subprocess.Popen | None = None
        self.verify = tls[0] if tls else True

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> "StrongroomServer":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([strongroom_binary(), "server", "-config", str(self.config_path)],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.workdir)
        log.close()

        def answering():
            if self.proc.poll() is not None:
                raise RuntimeError(f"strongroom exited with {self.proc.returncode}:\n{self.log()}")
            return requests.get(self.url + "/v1/sys/health", timeout=1, verify=self.verify).status_code in (200, 429, 473, 501, 503)

        try:
            wait_for(answering, timeout, message=f"strongroom on {self.url}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.log()}") from None
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)

    def kill(self) -> None:
        """kill -9 the node core (its gunicorn dies with it)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    # --- API helpers -------------------------------------------------------------

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["X-Vault-Token"] = token
        return requests.request(method, f"{self.url}/v1/{path.lstrip('/')}", headers=headers, timeout=10,
                                verify=self.verify, **kwargs)

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
