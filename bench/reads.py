"""Reads served by 1, 2 and 3 performance standbys, beside raw Consul GETs and OpenBao standby reads.

Run: ``.venv/bin/python -m bench.reads`` (``--help`` for the knobs).

Strongroom clusters of 2, 3 and 4 nodes (1 active + 1, 2, 3 performance
standbys) on one Consul agent, started one after the other, then one with
``disable_cache = true`` (the standby without its change-log cache: every
read a Consul GET, as before issue 15 item 4); wrk sends KV v2
GETs of 64 keys straight to the standbys (bench/lua/spread.lua: one wrk
thread per standby, the connections split evenly), at the same total
concurrency each time.  Beside them: raw Consul KV GETs on the same agent,
and a 3-node OpenBao raft cluster read through 1 and then 2 of its standbys
(standby reads on, OpenBao's default), then again with
``disable_standby_reads = true`` (standbys forward to the active node).
Per row: throughput in total, per serving node and per CPU core used, and
where the CPU went (standbys, active node, Consul).  The Markdown report is
printed and written to bench/results/reads-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import ha, ha_report, kv, procs, wrk


@dataclass
class Row:
    label: str
    servers: int  # nodes the reads were sent to
    result: wrk.WrkResult
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core per group
    per_server: list[int] = field(default_factory=list)  # requests per wrk thread (one server each)
    machine_busy: float | None = None  # % of all cores busy, whoever used them
    consul_gets_per_read: float | None = None
    forwarded: float | None = None  # requests the standbys forwarded to the active node
    error: str = ""

    def serving_cpu(self) -> float:
        return sum(v for k, v in self.cpu.items() if k != "consul")


class MachineBusy:
    """Share of all cores busy between start() and stop(), from /proc/stat."""

    @staticmethod
    def _read() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    def start(self) -> MachineBusy:
        self._t0 = self._read()
        return self

    def stop(self) -> float:
        total, idle = self._read()
        return 100 * (1 - (idle - self._t0[1]) / max(1, total - self._t0[0]))


def _metric_sum(text: str, name: str, label: str = "") -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (not label or label in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def measure(label: str, url: str, addrs: list[str], env: dict, groups: dict[str, list[int]], args) -> Row:
    """A warm-up, then one measured wrk run with one thread per address and CPU per group."""
    threads = max(1, len(addrs))
    connections = args.connections - args.connections % threads
    if args.warmup > 0:
        wrk.spread(url, addrs, env, connections=connections, duration_s=args.warmup, threads=threads)
    meter, busy = procs.CpuMeter(groups).start(), MachineBusy().start()
    result = wrk.spread(url, addrs, env, connections=connections, duration_s=args.duration, threads=threads)
    row = Row(label, threads, result, meter.stop(), machine_busy=busy.stop())
    row.per_server = [int(n) for n in re.findall(r"^thread \d+ \S+ requests (\d+)$", result.raw, re.MULTILINE)]
    shown = result.error or (
        f"{result.requests_per_s:,.0f} req/s p99 {result.p99_ms:.1f} ms, CPU "
        + ", ".join(f"{k} {v:.0f}%" for k, v in row.cpu.items())
    )
    print(f"  {label}: {shown}", file=sys.stderr, flush=True)
    return row


#: The row that shows a standby without its cache: every read is a Consul GET (before issue 15, item 4).
UNCACHED = ", disable_cache = true", "disable_cache = true\n"


def strongroom_rows(consul: procs.Consul, workdir: Path, args) -> list[Row]:
    rows = []
    runs = [(n, "", "") for n in args.standbys] + [(n, *UNCACHED) for n in args.uncached_standbys]
    for standbys, suffix, extra in runs:
        label = f"Strongroom, {standbys} perf standby" + ("s" if standbys > 1 else "") + suffix
        cluster = None
        try:
            cluster = ha.StrongroomHA(
                workdir / f"strongroom{standbys}{'-uncached' if extra else ''}",
                n=standbys + 1,
                workers=args.workers,
                consul=consul,
                extra=extra,
            ).start(keys=args.keys)
            active, nodes = cluster.wait_settled(), cluster.standbys()
            if len(nodes) != standbys:
                raise procs.BenchSetupError(f"{len(nodes)} performance standbys answer, expected {standbys}")
            env = wrk.kv_env(ha.KV_PREFIX, args.keys, cluster.token)
            groups = {
                "standbys": [p for n in nodes for p in cluster.pids(n.name)],
                "active": cluster.pids(active.name),
                "consul": [consul.pid],
            }
            before = [cluster.metrics(n) for n in nodes]
            row = measure(label, nodes[0].url, [n.address for n in nodes], env, groups, args)
            after = [cluster.metrics(n) for n in nodes]
            gets = sum(
                _metric_sum(a, "strongroom_storage_operation_duration_seconds_count", 'operation="get"')
                - _metric_sum(b, "strongroom_storage_operation_duration_seconds_count", 'operation="get"')
                for a, b in zip(after, before, strict=True)
            )
            served = sum(
                _metric_sum(a, "strongroom_http_requests_total", 'route="secret/data/:path"')
                - _metric_sum(b, "strongroom_http_requests_total", 'route="secret/data/:path"')
                for a, b in zip(after, before, strict=True)
            )
            row.consul_gets_per_read = gets / served if served else None
            row.forwarded = sum(
                _metric_sum(a, "strongroom_ha_forwarded_requests_total")
                - _metric_sum(b, "strongroom_ha_forwarded_requests_total")
                for a, b in zip(after, before, strict=True)
            )
            rows.append(row)
        except Exception as exc:
            rows.append(Row(label, standbys, wrk.WrkResult(), error=" ".join(str(exc).split())[:300]))
        finally:
            if cluster is not None:
                cluster.stop()
    return rows


def consul_row(consul: procs.Consul, args) -> Row:
    try:
        procs.populate_consul(consul, kv.CONSUL_PREFIX, args.keys, kv.VALUE)
        env = wrk.kv_env(kv.CONSUL_PREFIX, args.keys)
        return measure("raw Consul KV GET (1 agent)", consul.url, [consul.address], env, {"consul": [consul.pid]}, args)
    except Exception as exc:
        return Row("raw Consul KV GET (1 agent)", 1, wrk.WrkResult(), error=" ".join(str(exc).split())[:300])


OPENBAO_VARIANTS = (
    # (label suffix, extra configuration, standby counts)
    ("", "", (1, 2)),
    (", disable_standby_reads = true", "disable_standby_reads = true\n", (2,)),
)


def openbao_rows(workdir: Path, args) -> list[Row]:
    """OpenBao 2.7 with raft serves reads on its standbys by default; with ``disable_standby_reads`` they
    forward every request to the active node, as Vault's open-source standbys do."""
    rows = []
    for index, (suffix, extra, counts) in enumerate(OPENBAO_VARIANTS):
        cluster = None
        try:
            cluster = ha.OpenBaoHA(workdir / f"openbao{index}", n=3, extra=extra).start(keys=args.keys)
            active, standbys = cluster.wait_settled(), cluster.standbys()
            env = wrk.kv_env(ha.KV_PREFIX, args.keys, cluster.token)
            for count in counts:
                nodes = standbys[:count]
                groups = {
                    "standbys": [p for n in nodes for p in cluster.pids(n.name)],
                    "active": cluster.pids(active.name),
                }
                label = f"OpenBao (raft, 3 nodes), {count} standby" + ("s" if count > 1 else "") + suffix
                rows.append(measure(label, nodes[0].url, [n.address for n in nodes], env, groups, args))
        except Exception as exc:
            rows.append(
                Row(f"OpenBao (raft, 3 nodes){suffix}", 1, wrk.WrkResult(), error=" ".join(str(exc).split())[:300])
            )
        finally:
            if cluster is not None:
                cluster.stop()
    return rows


# --- the report ----------------------------------------------------------------------------------


def _per_core(row: Row, cpu: float) -> str:
    if row.result.requests_per_s is None or cpu <= 0:
        return "—"
    return f"{row.result.requests_per_s / (cpu / 100):,.0f}"


def render(rows: list[Row], args, started: dt.datetime, elapsed: float, load_before: str) -> str:
    lines = ha_report.header(
        "Read scaling benchmark",
        started,
        load_before,
        elapsed,
        [
            f"Load: wrk, {args.connections} connections in total (rounded down to a multiple of the servers), one wrk "
            f"thread per server read, {args.duration:g} s after {args.warmup:g} s warm-up; "
            f"KV v2 GET of {args.keys} keys "
            f"(64-byte values); Strongroom nodes with {args.workers} gunicorn workers each, one Consul agent for all",
            "CPU in % of one core during the run: the standbys read, the active node, the Consul agent; "
            '"per core" divides req/s by the CPU of the serving nodes (standbys + active), then also by that plus '
            'Consul\'s; "machine busy" is all cores, wrk and any other work on the machine included',
        ],
    )
    lines += [
        "| Target | req/s | per server | split by server | p50 ms | p99 ms | Errors | CPU % standbys / active / "
        "Consul | req/s per core (nodes) | req/s per core (nodes + Consul) | Machine busy % | Consul GETs per "
        "read | Forwarded |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        r = row.result
        if row.error or r.error:
            lines.append(f"| {row.label} | — | — | — | — | — | — | — | — | — | — | — | {row.error or r.error} |")
            continue
        errors = r.errors
        cpu = " / ".join(ha_report.fmt(row.cpu.get(k)) for k in ("standbys", "active", "consul"))
        split = " / ".join(f"{n / args.duration:,.0f}" for n in row.per_server) or "—"
        lines.append(
            f"| {row.label} | {r.requests_per_s:,.0f} | {r.requests_per_s / row.servers:,.0f} | {split} | "
            f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {errors} | {cpu} | {_per_core(row, row.serving_cpu())} | "
            f"{_per_core(row, row.serving_cpu() + row.cpu.get('consul', 0.0))} | "
            f"{ha_report.fmt(row.machine_busy)} | {ha_report.fmt(row.consul_gets_per_read, 2)} | "
            f"{ha_report.fmt(row.forwarded)} |"
        )
    lines += ["", *model(rows)]
    return "\n".join(lines) + "\n"


def model(rows: list[Row]) -> list[str]:
    """The arithmetic of the scaling model, from this run's per-core figures."""
    ours = [
        r
        for r in rows
        if r.label.startswith("Strongroom") and UNCACHED[0] not in r.label and not r.error and not r.result.error
    ]
    raw = next((r for r in rows if r.label.startswith("raw Consul") and not r.error and not r.result.error), None)
    if not ours or raw is None or not raw.cpu.get("consul"):
        return ["Model: not computed (a Strongroom or raw Consul row is missing)."]
    if not all(r.cpu.get("consul") for r in ours):
        return ["Model: not computed (Consul's CPU was not measured in a Strongroom row)."]
    best = max(ours, key=lambda r: r.result.requests_per_s / (r.serving_cpu() / 100))
    per_core = best.result.requests_per_s / (best.serving_cpu() / 100)
    consul_cost = (best.cpu["consul"] / 100) / best.result.requests_per_s  # Consul core-seconds per read
    raw_per_core = raw.result.requests_per_s / (raw.cpu["consul"] / 100)
    gets = best.consul_gets_per_read or 0
    lines = [
        "## Scaling model",
        "",
        f"- Strongroom: {per_core:,.0f} reads/s per core of node CPU (best row: {best.label}).",
        f"- Each read costs Consul {1000 * consul_cost:.3f} ms of CPU ({gets:.1f} Consul GETs per read), so one "
        f"Consul core carries {1 / consul_cost:,.0f} Strongroom reads/s.",
        f"- Raw Consul: {raw_per_core:,.0f} GET/s per core of Consul CPU "
        f"(÷ {gets:.1f} GETs per read = {raw_per_core / gets if gets else 0:,.0f} Strongroom reads/s per Consul core "
        "if Strongroom's GETs cost what wrk's do).",
        "- Reads ≈ min(standbys × cores per standby × reads/s per core, Consul leader cores × reads/s per "
        "Consul core).  With the standby cache (storage/changes.py) a steady-state read makes no Consul "
        "call: Consul's CPU per read is what its agent spends anyway (the standbys' change-log and lock "
        "watches, health checks) divided by the reads, and falls as reads grow.",
        "",
        "| Standbys × cores | Strongroom-bound reads/s | Consul leader 4 cores | Consul leader 8 cores | "
        "Expected reads/s (8-core leader) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for standbys, cores in ((1, 2), (3, 2), (3, 4), (3, 8), (3, 16), (6, 16)):
        bound = standbys * cores * per_core
        lines.append(
            f"| {standbys} × {cores} | {bound:,.0f} | {4 / consul_cost:,.0f} | {8 / consul_cost:,.0f} | "
            f"{min(bound, 8 / consul_cost):,.0f} |"
        )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reads", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=float(os.environ.get("BENCH_DURATION", "10")),
        help="seconds per measured wrk run (default 10)",
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="total wrk connections (default 64)")
    parser.add_argument("--standbys", default="1,2,3", help="performance standby counts (default 1,2,3)")
    parser.add_argument(
        "--uncached-standbys",
        default="1",
        help="performance standby counts also run with disable_cache = true, every read a Consul GET "
        "(default 1; empty for none)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per Strongroom node (default 2)")
    parser.add_argument("--keys", type=int, default=64, help="distinct keys read in turn (default 64)")
    parser.add_argument("--no-openbao", action="store_true", help="skip the OpenBao rows")
    procs.add_output_args(parser)
    args = parser.parse_args(argv)
    args.standbys = [int(n) for n in args.standbys.split(",") if n.strip()]
    args.uncached_standbys = [int(n) for n in args.uncached_standbys.split(",") if n.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return ha_report.run_beside_consul_and_openbao(
        "reads",
        args,
        lambda consul, workdir: strongroom_rows(consul, workdir, args),
        lambda consul: consul_row(consul, args),
        lambda workdir: openbao_rows(workdir, args),
        lambda rows, started, elapsed, load_before: render(rows, args, started, elapsed, load_before),
    )


if __name__ == "__main__":
    sys.exit(main())
