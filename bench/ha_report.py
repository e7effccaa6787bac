"""What the HA benchmarks (failover, stale_read, reads, haproxy_cost) share in measuring and reporting:
CPU per group of processes, percentiles, the report's header, the work folder and the results file."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from bench import kv, procs


class CpuMeter:
    """CPU used by groups of processes between ``start()`` and ``stop()``, in % of one core."""

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = groups
        self._before: dict[int, float] = {}
        self._t0 = 0.0
        self.share: dict[str, float] = {}

    def start(self) -> "CpuMeter":
        self._before = {pid: t for pids in self.groups.values() for pid in pids
                        if (t := procs.cpu_seconds(pid)) is not None}
        self._t0 = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._t0
        for label, pids in self.groups.items():
            used = 0.0
            for pid in pids:
                now = procs.cpu_seconds(pid)
                used += (now if now is not None else self._before.get(pid, 0.0)) - self._before.get(pid, 0.0)
            self.share[label] = 100 * used / elapsed
        return self.share


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def header(title: str, started: dt.datetime, load_before: str, elapsed: float, extra: list[str]) -> list[str]:
    """The first lines of every HA report: machine, versions, load, then ``extra`` bullet lines."""
    git_rev = kv._version(["git", "-C", str(procs.REPO), "rev-parse", "--short", "HEAD"])
    consul = kv._version([procs.consul_binary_or_none() or "consul", "version"])
    bao = " ".join(kv._version([str(procs.VENV_BIN / "bao"), "version"]).split()[:2])
    haproxy = kv._version(["/usr/sbin/haproxy", "-v"]).split(" - ")[0]
    return [f"# {title}, {started:%Y-%m-%d %H:%M} UTC", "",
            f"- Machine: {kv.machine()}",
            f"- Versions: Strongroom (work tree at {git_rev}), {consul}, {bao}, {haproxy}, "
            f"Python {sys.version.split()[0]}",
            f"- Whole run: {elapsed:.0f} s; load average (1/5/15 min) {load_before} before, {kv._loadavg()} after "
            f"(anything above ~0.5 before means other work shared the {kv._cores()} cores)",
            *[f"- {line}" for line in extra], ""]


def workdir_for(name: str, started: dt.datetime) -> Path:
    path = procs.REPO / "run" / "bench" / f"{name}-{started:%Y%m%dT%H%M%S}-{os.getpid()}"
    path.mkdir(parents=True)
    return path


def finish(name: str, report: str, started: dt.datetime, workdir: Path, keep: bool, out: Path | None) -> None:
    """Print the report, write ``bench/results/<name>-<date>.md``, remove the work folder unless kept."""
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{name}-{started:%Y-%m-%d}.md"
        path.write_text(report)
        print(f"written to {path}", file=sys.stderr)


def stop_on_sigterm() -> None:
    """SIGTERM (make interrupted, a CI timeout) unwinds like Ctrl-C, so every process started is stopped."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"
