"""Run wrk with a Lua script and read its ``--latency`` report.

The scripts in ``bench/lua`` take their settings from ``BENCH_*`` environment
variables: ``kv_env`` builds them, ``spread`` adds the server list of
``spread.lua``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass
class WrkResult:
    """What one wrk run measured; ``error`` is set instead when it could not run."""

    requests_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    non_2xx: int = 0
    socket_errors: int = 0
    error: str = ""
    raw: str = ""

    @property
    def errors(self) -> int:
        """Requests that failed: non-2xx/3xx answers and socket errors."""
        return self.non_2xx + self.socket_errors

    @property
    def failed_fraction(self) -> float:
        if not self.requests:
            return 1.0
        return min(1.0, self.errors / self.requests)


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise FileNotFoundError("wrk not found: run `make deps` (Debian package wrk)")
    return found


def missing() -> str:
    """Why wrk cannot run here, or "" when it can: a scenario's ``main`` checks this before starting servers."""
    try:
        wrk_binary()
    except FileNotFoundError as exc:
        return str(exc)
    return ""


def kv_env(
    path_prefix: str, keys: int, token: str = "", *, method: str | None = None, body: str | None = None
) -> dict[str, str]:
    """The settings of ``read.lua``, ``write.lua`` and ``spread.lua``: requests to ``<path_prefix><n>`` for n
    in 0..keys-1, with ``token`` as X-Vault-Token when set; ``method`` and ``body`` when given (each script has
    its own default method)."""
    env = {"BENCH_PATH_PREFIX": path_prefix, "BENCH_KEYS": str(keys), "BENCH_TOKEN": token}
    if method is not None:
        env["BENCH_METHOD"] = method
    if body is not None:
        env["BENCH_BODY"] = body
    return env


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse(output: str) -> WrkResult:
    """Read requests/s, the 50th and 99th percentile and the error counts from wrk's report."""
    result = WrkResult(raw=output)
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    if not (rps and total and "50" in percentiles and "99" in percentiles):
        result.error = "wrk report not understood: " + " | ".join(output.strip().splitlines()[-3:])
        return result
    result.requests_per_s = float(rps.group(1))
    result.requests = int(total.group(1))
    result.p50_ms = _duration_ms(percentiles["50"])
    result.p99_ms = _duration_ms(percentiles["99"])
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result.non_2xx = int(non_2xx.group(1)) if non_2xx else 0
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result.socket_errors = sum(int(n) for n in sockets.groups()) if sockets else 0
    return result


def run(
    url: str,
    script: str,
    env: dict[str, str],
    *,
    connections: int,
    duration_s: float,
    threads: int,
    timeout_s: float = 10.0,
) -> WrkResult:
    """``wrk --latency`` against ``url`` with ``bench/lua/<script>.lua``; bounded by ``duration_s`` plus a margin."""
    argv = [
        wrk_binary(),
        "--latency",
        "-t",
        str(max(1, min(threads, connections))),
        "-c",
        str(connections),
        "-d",
        f"{duration_s:g}s",
        "--timeout",
        f"{timeout_s:g}s",
        "-s",
        str(LUA / f"{script}.lua"),
        url,
    ]
    try:
        done = subprocess.run(
            argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=duration_s + timeout_s + 30
        )
    except subprocess.TimeoutExpired:
        return WrkResult(error=f"wrk did not finish within {duration_s + timeout_s + 30:.0f}s")
    if done.returncode != 0:
        return WrkResult(error=f"wrk exited {done.returncode}: {done.stderr.strip()[-300:]}", raw=done.stdout)
    return parse(done.stdout)


def spread(
    url: str, addrs: list[str], env: dict[str, str], *, connections: int, duration_s: float, threads: int
) -> WrkResult:
    """``run`` with ``bench/lua/spread.lua``: wrk thread i sends to ``addrs[i mod len(addrs)]`` (``host:port``)."""
    return run(
        url,
        "spread",
        {**env, "BENCH_ADDRS": ",".join(addrs)},
        connections=connections,
        duration_s=duration_s,
        threads=threads,
    )
