"""The real Prometheus for the monitoring tier: ``PrometheusProcess`` runs
Debian's ``prometheus`` with a configuration file of the test's own, on a free
loopback port, and answers through Prometheus's HTTP API
(https://prometheus.io/docs/prometheus/latest/querying/api/).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Self

import requests

from tests.helpers.procs.base import Process, free_port, wait_until


def prometheus_binary() -> str:
    """Path of the prometheus binary (Debian's package installs ``/usr/bin/prometheus``).

    Raises RuntimeError (telling how to install it) when there is none."""
    found = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if found is None:
        raise RuntimeError("prometheus is not installed: `make debs` installs Debian's package")
    return found


class PrometheusQueryError(RuntimeError):
    """Prometheus answered a query with ``"status": "error"`` (bad expression, timeout)."""


class PrometheusProcess(Process):
    """One ``prometheus --config.file=<config_path>`` on loopback, its TSDB in a
    private temporary directory.

    The caller owns ``config_path`` (and what it names: rule files, target
    files, the token file); Prometheus reads it at start.  Ready once
    ``/-/ready`` answers 200.  Invariants (``Process``): the process runs in a
    session of its own and is only ever signalled by its own pid; ``stop()`` is
    idempotent and removes the data directory.  Use as a context manager.
    """

    name = "prometheus"

    def __init__(
        self, config_path: Path, *, host: str = "127.0.0.1", port: int | None = None, ready_timeout: float = 30.0
    ):
        self.config_path = Path(config_path)
        self.host = host
        self.port = port or free_port(host)
        self.ready_timeout = ready_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="strongroom-prometheus-"))
        super().__init__(self.dir / "prometheus.log", scratch=self.dir)

    @property
    def url(self) -> str:
        """``http://host:port`` of the web UI and HTTP API."""
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        """The ``prometheus`` command line."""
        return [
            prometheus_binary(),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            "--log.level=warn",
        ]

    def start(self) -> Self:
        """Start prometheus in the configuration file's directory and wait until it is ready."""
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        self._spawn(self.command(), cwd=self.config_path.parent)
        self._wait_ready(
            lambda: requests.get(self.url + "/-/ready", timeout=2).status_code == 200,
            self.ready_timeout,
            f"prometheus on {self.url}",
            interval=0.1,
        )
        return self

    # -- HTTP API ------------------------------------------------------------

    def api(self, path: str, **params: Any) -> Any:
        """``data`` of ``GET /api/v1/<path>``; PrometheusQueryError when Prometheus says error."""
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """The result of an instant query at the current time (a vector's samples,
        a scalar as one sample without labels)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        """``[{"metric": {...}, "values": [[t, "v"], ...]}, ...]`` of a range query."""
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def targets(self) -> list[dict]:
        """The active scrape targets (``labels``, ``health``, ``lastError``, ...)."""
        return self.api("targets", state="active")["activeTargets"]

    def rules(self) -> list[dict]:
        """Every loaded rule (``name``, ``query``, ``health``, ``lastError``, ``state``
        for alerts), flattened over the rule groups."""
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def alerts(self) -> list[dict]:
        """The pending and firing alerts (``labels``, ``state``, ``activeAt``)."""
        return self.api("alerts")["alerts"]

    def firing(self, alertname: str) -> list[dict]:
        """The alerts named ``alertname`` in state firing."""
        return [a for a in self.alerts() if a["labels"].get("alertname") == alertname and a["state"] == "firing"]

    def wait_targets_up(self, expected: dict[str, int], timeout: float = 30.0) -> None:
        """Block until, for each ``job: n`` in ``expected``, n targets of that job were scraped successfully."""
        seen: list[dict[str, int]] = [{}]

        def up() -> bool:
            counts: dict[str, int] = {}
            for target in self.targets():
                if target["health"] == "up":
                    job = target["labels"]["job"]
                    counts[job] = counts.get(job, 0) + 1
            seen[0] = counts
            return all(counts.get(job, 0) >= n for job, n in expected.items())

        try:
            wait_until(up, timeout, f"targets up {expected}", interval=0.2)
        except TimeoutError as exc:
            errors = {t["scrapeUrl"]: t["lastError"] for t in self.targets() if t["health"] != "up"}
            raise TimeoutError(f"{exc}; up: {seen[0]}; errors: {errors}") from None
