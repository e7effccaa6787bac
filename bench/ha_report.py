"""What the HA benchmarks (failover, stale_read, reads, cluster_writes, haproxy_cost) share in reporting:
percentiles, the report's header, the work folder and the results file (CPU per group of processes is
``procs.CpuMeter``), and the run of a benchmark that measures Strongroom clusters, raw Consul and OpenBao."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import kv, procs, wrk


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


@dataclass(frozen=True)
class Run:
    """A benchmark run begun by ``begin``: when, the load before it, its work folder."""

    started: dt.datetime
    load_before: str
    t0: float  # time.monotonic() at the start
    workdir: Path

    def elapsed(self) -> float:
        return time.monotonic() - self.t0


def begin(name: str) -> Run | None:
    """What an HA benchmark does first (SIGTERM stops what it starts; wrk is there);
    None, with the reason printed, when it cannot run."""
    procs.stop_on_sigterm()
    if problem := wrk.missing():
        print(f"error: {problem}", file=sys.stderr)
        return None
    started = dt.datetime.now(dt.UTC)
    load_before, t0 = kv._loadavg(), time.monotonic()
    return Run(started, load_before, t0, workdir_for(name, started))


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


def run_beside_consul_and_openbao(
    name: str,
    args: Any,
    strongroom_rows: Callable[[procs.Consul, Path], Sequence[Any]],
    consul_row: Callable[[procs.Consul], Any],
    openbao_rows: Callable[[Path], Sequence[Any]],
    render: Callable[[list, dt.datetime, float, str], str],
) -> int:
    """The run of ``bench.reads`` and ``bench.cluster_writes``: Strongroom's rows and raw Consul's on one
    agent, then OpenBao's (unless ``args.no_openbao``); the report is printed and written as ``name``.
    Each row has ``error`` and ``result.error``; ``render(rows, started, elapsed, load_before)``."""
    run = begin(name)
    if run is None:
        return 2
    started, workdir = run.started, run.workdir
    rows: list = []
    consul = None
    try:
        consul = procs.start_consul(workdir / "consul")
        print("== Strongroom", file=sys.stderr, flush=True)
        rows += strongroom_rows(consul, workdir)
        print("== raw Consul", file=sys.stderr, flush=True)
        rows.append(consul_row(consul))
    finally:
        if consul is not None:
            consul.stop()
    if not args.no_openbao:
        print("== OpenBao", file=sys.stderr, flush=True)
        rows += openbao_rows(workdir)
    keep = args.keep_workdir or any(r.error or r.result.error for r in rows)
    report = render(rows, started, run.elapsed(), run.load_before)
    if keep:
        report += f"\nConfigs and logs kept in {workdir.relative_to(procs.REPO)}.\n"
    finish(name, report, started, workdir, keep, None if args.no_write else args.out)
    return 0
