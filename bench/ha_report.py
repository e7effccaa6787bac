"""What the HA benchmarks (failover, stale_read, reads, haproxy_cost) share in reporting: percentiles,
the report's header, the work folder and the results file (CPU per group of processes is ``procs.CpuMeter``)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from pathlib import Path

from bench import kv, procs


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
    return [
        f"# {title}, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {kv.machine()}",
        f"- Versions: Strongroom (work tree at {git_rev}), {consul}, {bao}, {haproxy}, Python {sys.version.split()[0]}",
        f"- Whole run: {elapsed:.0f} s; load average (1/5/15 min) {load_before} before, {kv._loadavg()} after "
        f"(anything above ~0.5 before means other work shared the {kv._cores()} cores)",
        *[f"- {line}" for line in extra],
        "",
    ]


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


def fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"
