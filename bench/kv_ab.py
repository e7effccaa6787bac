"""A/B of two Strongroom trees on KV v2 writes and reads: node CPU per request, side by side.

Run: ``.venv/bin/python -m bench.kv_ab --base <git rev>`` or ``--revert <commit>,...``
(``--help`` for the knobs).

Node A runs the tree at ``--base`` (extracted with ``git archive`` into the
work folder), or node B's tree with the ``--revert`` commits undone (one
lever measured alone while other work lands beside it); node B runs
``--test`` (default: the work tree's files, uncommitted changes included).
Both run on one Consul agent (their own key prefixes) with the same number
of workers, each prepared as ``bench.kv`` prepares Strongroom (KV v2 at
secret/, every key written once, the root token or ``--token policy``).
Then, ``--rounds`` times, for writes and then reads, one wrk run against A
and one against B (the order alternates between rounds), so load from
elsewhere on a shared machine falls on both alike.  Only one node is under
load at a time.  Per run: requests/s, p99, the node's CPU (node core,
gunicorn, workers) and its Consul agent's, per request; the report gives
each node's medians and B/A.

On a machine shared with other work, compare the CPU per request more than
the throughput: a starved node serves less but spends about the same per
request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench import kv, procs, wrk

NODES = ("A", "B")
MEASURES = ("rps", "p99", "node_us", "consul_us")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.kv_ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="", help="git revision node A runs")
    parser.add_argument("--test", default="", help="git revision node B runs (default: the work tree)")
    parser.add_argument(
        "--revert", default="", help="comma-separated commits undone in node B's tree to make node A's (no --base)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="A and B runs per operation (default 4)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="workers per node")
    parser.add_argument("--keys", type=int, default=64, help="distinct keys (default 64)")
    parser.add_argument("--token", choices=("root", "policy"), default="root", help="root, or a three-path policy")
    parser.add_argument("--ops", default="write,read", help="operations, in order (default write,read)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep configs and logs under run/bench")
    args = parser.parse_args(argv)
    if bool(args.base) == bool(args.revert):
        parser.error("give either --base or --revert")
    return args


def _git(*argv: str) -> bytes:
    return subprocess.run(["git", "-C", str(procs.REPO), *argv], capture_output=True, check=True).stdout


def _extract(rev: str, into: Path) -> Path:
    """The tree at ``rev`` (the work tree's files for "") under ``into``; returns its ``service/`` folder."""
    into.mkdir(parents=True)
    if rev:
        subprocess.run(["tar", "-x", "-C", str(into)], input=_git("archive", rev, "service"), check=True)
    else:
        shutil.copytree(procs.REPO / "service", into / "service", ignore=shutil.ignore_patterns("__pycache__"))
    return into / "service"


def _trees(args, workdir: Path) -> dict[str, Path]:
    """The ``service/`` folders of node A and node B."""
    test = _extract(args.test, workdir / "test-tree")
    if args.base:
        return {"A": _extract(args.base, workdir / "base-tree"), "B": test}
    base = _extract(args.test, workdir / "base-tree")
    for commit in args.revert.split(","):
        patch = _git("diff", f"{commit}^", commit, "--", "service")
        subprocess.run(["patch", "-s", "-R", "-p1", "-d", str(base.parent)], input=patch, check=True)
    return {"A": base, "B": test}


def _run(server: procs.VaultAPIServer, env: dict, op: str, consul: procs.Consul, args) -> dict:
    """One wrk run and the CPU the node and its Consul agent spent per request."""
    meter = procs.CpuMeter({"node": procs.with_descendants(server.service.pid), "consul": [consul.pid]}).start()
    result = wrk.run(
        server.url, op, env[op], connections=args.connections, duration_s=args.duration, threads=args.threads
    )
    share = meter.stop()
    rps = result.requests_per_s or 0.0
    return {
        "rps": rps,
        "p99": result.p99_ms or 0.0,
        "node_us": share["node"] * 10_000 / rps if rps else float("nan"),
        "consul_us": share["consul"] * 10_000 / rps if rps else float("nan"),
    }


def _measure(nodes: dict, envs: dict, consul: procs.Consul, args) -> dict[tuple[str, str], list[dict]]:
    results: dict[tuple[str, str], list[dict]] = {}
    for op in args.ops.split(","):
        for name in NODES:  # unmeasured warm-up
            wrk.run(nodes[name].url, op, envs[name][op], connections=args.connections, duration_s=2, threads=1)
        for round_ in range(args.rounds):
            for name in NODES if round_ % 2 == 0 else NODES[::-1]:
                row = _run(nodes[name], envs[name], op, consul, args)
                results.setdefault((op, name), []).append(row)
                print(
                    f"  {op:<5} {name} {row['rps']:8.0f} req/s  p99 {row['p99']:6.1f} ms  "
                    f"node {row['node_us']:5.0f} µs/req  Consul {row['consul_us']:4.0f} µs/req",
                    file=sys.stderr,
                    flush=True,
                )
    return results


def _report(args, results: dict, started: dt.datetime, load_before: str) -> str:
    load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    head = _git("rev-parse", "--short", "HEAD").decode().strip()
    test = args.test or f"the work tree at {head}"
    base = args.base or f"B with {args.revert} undone"
    lines = [
        f"# KV v2 A/B, {started:%Y-%m-%d %H:%M} UTC: A = {base}, B = {test}",
        "",
        f"- {args.workers} workers per node, {args.connections} connections, {args.threads} wrk thread(s), "
        f"{args.rounds} × {args.duration:g} s per node and operation, {args.keys} keys, {args.token} token",
        f"- load average {load_before} before, {load_after} after",
        "",
        "| Op | Node | req/s (median) | p99 ms (median) | node CPU µs/req (median) | Consul CPU µs/req (median) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for op in args.ops.split(","):
        medians = {
            name: {k: statistics.median(r[k] for r in results[(op, name)]) for k in MEASURES}
            for name in NODES
            if results.get((op, name))
        }
        for name, m in medians.items():
            lines.append(
                f"| {op} | {name} | {m['rps']:,.0f} | {m['p99']:.1f} | {m['node_us']:.0f} | {m['consul_us']:.0f} |"
            )
        if len(medians) == 2:
            a, b = medians["A"], medians["B"]
            ratios = " | ".join(f"{b[k] / a[k]:.2f}" if a[k] else "—" for k in MEASURES)
            lines.append(f"| {op} | B/A | {ratios} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs.stop_on_sigterm()
    if problem := wrk.missing():
        print(f"error: {problem}", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    workdir = procs.REPO / "run" / "bench" / f"kv-ab-{started:%Y%m%dT%H%M%S}-{os.getpid()}"
    sources = _trees(args, workdir)
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    consul = procs.start_consul(workdir / "consul")
    nodes: dict[str, procs.VaultAPIServer] = {}
    envs: dict[str, dict] = {}
    try:
        for name in NODES:
            server = procs.start_strongroom(
                workdir / f"node-{name}", consul, args.workers, prefix=f"strongroom-ab-{name}/", source=sources[name]
            )
            nodes[name] = server
            procs.populate_kv2(server, kv.VAULT_PREFIX, args.keys, kv.VALUE)
            token = server.token if args.token == "root" else procs.policy_token(server)
            envs[name] = kv._vault_env(token, args.keys)
        results = _measure(nodes, envs, consul, args)
    finally:
        for server in nodes.values():
            server.service.stop()
        consul.stop()
    print(_report(args, results, started, load_before))
    if not args.keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
