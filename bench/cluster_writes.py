"""KV v2 writes through the active node while 0, 1 and 2 performance standbys follow it.

Run: ``.venv/bin/python -m bench.cluster_writes`` (``--help`` for the knobs).

Every fenced write of the active node carries a change record, and every
performance standby follows the change log (storage/changes.py); this
measures what that costs the cluster's writes.  Strongroom clusters of 1, 2
and 3 nodes on one Consul agent, started one after the other; wrk sends KV v2
writes (bench/lua/write.lua, 64 keys in turn) straight to the active node.
Beside them, at the same concurrency: raw Consul KV PUTs on the same agent,
and a 3-node OpenBao raft cluster written through its active node (each
write replicated to two followers).  Per row: writes/s, latency, and the CPU
per write of the active node, the standbys and Consul.  The Markdown report
is printed and written to bench/results/cluster-writes-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import ha, ha_report, kv, procs, wrk
from bench.reads import MachineBusy

BODY = '{"data":{"value":"' + kv.VALUE + '"}}'


@dataclass
class Row:
    label: str
    result: wrk.WrkResult
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core per group
    machine_busy: float | None = None
    error: str = ""


def measure(label: str, url: str, env: dict, groups: dict[str, list[int]], args) -> Row:
    """A warm-up, then one measured wrk run of writes with CPU per group."""
    if args.warmup > 0:
        wrk.run(url, "write", env, connections=args.connections, duration_s=args.warmup, threads=1)
    meter, busy = procs.CpuMeter(groups).start(), MachineBusy().start()
    result = wrk.run(url, "write", env, connections=args.connections, duration_s=args.duration, threads=1)
    row = Row(label, result, meter.stop(), machine_busy=busy.stop())
    shown = result.error or (
        f"{result.requests_per_s:,.0f} writes/s p99 {result.p99_ms:.1f} ms, CPU "
        + ", ".join(f"{k} {v:.0f}%" for k, v in row.cpu.items())
    )
    print(f"  {label}: {shown}", file=sys.stderr, flush=True)
    return row


def _failed(label: str, exc: Exception) -> Row:
    return Row(label, wrk.WrkResult(), error=" ".join(str(exc).split())[:300])


def strongroom_rows(consul: procs.Consul, workdir: Path, args) -> list[Row]:
    rows = []
    for standbys in args.standbys:
        label = f"Strongroom, {standbys} perf standby" + ("s" if standbys != 1 else "") + " following"
        cluster = None
        try:
            cluster = ha.StrongroomHA(
                workdir / f"strongroom{standbys}", n=standbys + 1, workers=args.workers, consul=consul
            ).start(keys=args.keys)
            active, nodes = cluster.wait_settled(), cluster.standbys()
            if len(nodes) != standbys:
                raise procs.BenchSetupError(f"{len(nodes)} performance standbys answer, expected {standbys}")
            groups = {
                "active": cluster.pids(active.name),
                "standbys": [p for n in nodes for p in cluster.pids(n.name)],
                "consul": [consul.pid],
            }
            env = wrk.kv_env(ha.KV_PREFIX, args.keys, cluster.token, method="POST", body=BODY)
            rows.append(measure(label, active.url, env, groups, args))
        except Exception as exc:
            rows.append(_failed(label, exc))
        finally:
            if cluster is not None:
                cluster.stop()
    return rows


def consul_row(consul: procs.Consul, args) -> Row:
    label = "raw Consul KV PUT (1 agent)"
    try:
        env = wrk.kv_env(kv.CONSUL_PREFIX, args.keys, method="PUT", body=kv.VALUE)
        return measure(label, consul.url, env, {"consul": [consul.pid]}, args)
    except Exception as exc:
        return _failed(label, exc)


def openbao_row(workdir: Path, args) -> Row:
    label = "OpenBao (raft, 3 nodes), written through the active"
    cluster = None
    try:
        cluster = ha.OpenBaoHA(workdir / "openbao", n=3).start(keys=args.keys)
        active, standbys = cluster.wait_settled(), cluster.standbys()
        groups = {"active": cluster.pids(active.name), "standbys": [p for n in standbys for p in cluster.pids(n.name)]}
        env = wrk.kv_env(ha.KV_PREFIX, args.keys, cluster.token, method="POST", body=BODY)
        return measure(label, active.url, env, groups, args)
    except Exception as exc:
        return _failed(label, exc)
    finally:
        if cluster is not None:
            cluster.stop()


# --- the report ----------------------------------------------------------------------------------


def _per_write(row: Row, group: str) -> str:
    rate = row.result.requests_per_s
    if group not in row.cpu or not rate:
        return "—"
    return f"{row.cpu[group] / 100 / rate * 1e6:,.0f}"


def render(rows: list[Row], args, started: dt.datetime, elapsed: float, load_before: str) -> str:
    lines = ha_report.header(
        "Cluster write benchmark",
        started,
        load_before,
        elapsed,
        [
            f"Load: wrk, 1 thread, {args.connections} connections to the active node, {args.duration:g} s after "
            f"{args.warmup:g} s warm-up; KV v2 writes of {args.keys} keys in turn (64-byte values); Strongroom "
            f"nodes with {args.workers} gunicorn workers each, one Consul agent for all, every node on this machine",
            "CPU in % of one core during the run, and in µs per write: the active node, the standbys, the Consul "
            'agent; "machine busy" is all cores, wrk and any other work on the machine included (the standbys '
            "share the cores with the active node here: on their own machines they would not slow it)",
        ],
    )
    lines += [
        "| Target | writes/s | p50 ms | p99 ms | Errors | CPU % active / standbys / Consul | "
        "µs per write active / standbys / Consul | Machine busy % |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for row in rows:
        r = row.result
        if row.error or r.error:
            lines.append(f"| {row.label} | — | — | — | — | — | — | {row.error or r.error} |")
            continue
        groups = ("active", "standbys", "consul")
        cpu = " / ".join(ha_report.fmt(row.cpu.get(k)) for k in groups)
        per_write = " / ".join(_per_write(row, k) for k in groups)
        lines.append(
            f"| {row.label} | {r.requests_per_s:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {cpu} | "
            f"{per_write} | {ha_report.fmt(row.machine_busy)} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_writes", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=float(os.environ.get("BENCH_DURATION", "10")),
        help="seconds per measured wrk run (default 10)",
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--standbys", default="0,1,2", help="performance standby counts (default 0,1,2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per Strongroom node (default 2)")
    parser.add_argument("--keys", type=int, default=64, help="distinct keys written in turn (default 64)")
    parser.add_argument("--no-openbao", action="store_true", help="skip the OpenBao row")
    procs.add_output_args(parser)
    args = parser.parse_args(argv)
    args.standbys = [int(n) for n in args.standbys.split(",") if n.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return ha_report.run_beside_consul_and_openbao(
        "cluster-writes",
        args,
        lambda consul, workdir: strongroom_rows(consul, workdir, args),
        lambda consul: consul_row(consul, args),
        lambda workdir: [openbao_row(workdir, args)],
        lambda rows, started, elapsed, load_before: render(rows, args, started, elapsed, load_before),
    )


if __name__ == "__main__":
    sys.exit(main())
