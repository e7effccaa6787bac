"""HAProxy's cost: KV v2 reads and writes through HAProxy beside the same load sent straight to the nodes.

Run: ``.venv/bin/python -m bench.haproxy_cost`` (``--help`` for the knobs).

One cluster of 3 Strongroom nodes on one Consul agent, the real HAProxy in
front (Strongroom's template, as deployed: health checks every 500 ms, one log
line per request).  In the same run, interleaved round by round so that drift
on the machine hits every variant alike:

- writes through HAProxy's front door, and straight to the active node;
- reads through HAProxy's front door (its read backend: the active node and
  both performance standbys), straight to the two performance standbys, and
  straight to all three nodes (the set HAProxy's read backend balances over).

Every variant uses the same wrk threads and connections.  The Markdown report
is printed and written to bench/results/haproxy_cost-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import ha, ha_report, kv, procs, wrk


@dataclass
class Variant:
    op: str  # "write" or "read"
    label: str
    url: str
    addrs: list[str]
    runs: list[wrk.WrkResult] = field(default_factory=list)
    cpu: list[dict[str, float]] = field(default_factory=list)
    via_haproxy: bool = False

    def median(self, attribute: str) -> float | None:
        values = [getattr(r, attribute) for r in self.runs if not r.error]
        return statistics.median(values) if values else None


def variants(cluster: ha.StrongroomHA, haproxy) -> list[Variant]:
    active, standbys = cluster.wait_settled(), cluster.standbys()
    front = f"{haproxy.host}:{haproxy.port}"
    return [
        Variant("write", "through HAProxy", haproxy.url, [front], via_haproxy=True),
        Variant("write", "straight to the active node", active.url, [active.address]),
        Variant("read", "through HAProxy (active + 2 perf standbys)", haproxy.url, [front], via_haproxy=True),
        Variant("read", "straight to the 2 perf standbys", standbys[0].url, [n.address for n in standbys]),
        Variant("read", "straight to all 3 nodes", active.url, [active.address] + [n.address for n in standbys]),
    ]


def run_variants(cluster: ha.StrongroomHA, haproxy, all_variants: list[Variant], args) -> None:
    groups = {
        "nodes": [p for n in cluster.nodes() for p in cluster.pids(n.name)],
        "haproxy": [haproxy.pid],
        "consul": [cluster.consul.pid],
    }
    body = json.dumps({"data": {"value": kv.VALUE}})
    settings = {
        "write": (wrk.kv_env(ha.KV_PREFIX, args.keys, cluster.token, method="POST", body=body), args.write_connections),
        "read": (wrk.kv_env(ha.KV_PREFIX, args.keys, cluster.token, method="GET"), args.read_connections),
    }
    for op in ("write", "read"):
        env, connections = settings[op]
        mine = [v for v in all_variants if v.op == op]
        for variant in mine:  # warm-up, unmeasured
            wrk.spread(
                variant.url, variant.addrs, env, connections=connections, duration_s=args.warmup, threads=args.threads
            )
        for round_ in range(args.rounds):
            order = mine if round_ % 2 == 0 else list(reversed(mine))
            for variant in order:
                meter = procs.CpuMeter(groups).start()
                result = wrk.spread(
                    variant.url,
                    variant.addrs,
                    env,
                    connections=connections,
                    duration_s=args.duration,
                    threads=args.threads,
                )
                variant.runs.append(result)
                variant.cpu.append(meter.stop())
                shown = result.error or (
                    f"{result.requests_per_s:,.0f} req/s p50 {result.p50_ms:.1f} ms "
                    f"p99 {result.p99_ms:.1f} ms errors {result.errors}"
                )
                print(f"  round {round_ + 1} {op} {variant.label}: {shown}", file=sys.stderr, flush=True)


_LOG_LINE = re.compile(r" (strongroom_(?:read|write))/\S+ (-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/\+?(-?\d+) \d{3} ")


def haproxy_timers(log_path: Path) -> dict[str, dict[str, list[int]]]:
    """HAProxy's own timers per backend from its request log (``option httplog``: TR/Tw/Tc/Tr/Ta, ms):
    ``wait`` = Tw + Tc (queue and connect: HAProxy's own doing), ``server`` = Tr (until the node's
    response headers), ``transfer`` = Ta - TR - Tw - Tc - Tr (the rest of the response, relayed)."""
    timers: dict[str, dict[str, list[int]]] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        match = _LOG_LINE.search(line)
        if not match:
            continue
        backend = match.group(1)
        t_req, t_wait, t_conn, t_resp, t_all = (int(x) for x in match.groups()[1:])
        if min(t_req, t_wait, t_conn, t_resp) < 0:
            continue  # aborted
        entry = timers.setdefault(backend, {"wait": [], "server": [], "transfer": []})
        entry["wait"].append(t_wait + t_conn)
        entry["server"].append(t_resp)
        entry["transfer"].append(t_all - t_req - t_wait - t_conn - t_resp)
    return timers


def _cost(ours: float | None, base: float | None, higher_is_worse: bool = True) -> str:
    if ours is None or base is None or base == 0:
        return "—"
    change = (ours / base - 1) * 100 if higher_is_worse else (1 - ours / base) * 100
    return f"{change:+.1f} %"


def render(
    all_variants: list[Variant], timers: dict, error: str, args, started: dt.datetime, elapsed: float, load_before: str
) -> str:
    lines = ha_report.header(
        "HAProxy cost benchmark",
        started,
        load_before,
        elapsed,
        [
            f"Cluster: 3 Strongroom nodes ({args.workers} gunicorn workers each) on one Consul agent; HAProxy from "
            "Strongroom's template (strongroom.haproxy.render, defaults: checks every 500 ms, httplog to stdout)",
            f"Load: wrk {args.threads} threads (bench/lua/spread.lua: thread i talks to address i mod n), "
            f"{args.write_connections} connections for writes, {args.read_connections} for reads; {args.rounds} rounds "
            f"of {args.duration:g} s per variant, interleaved (odd rounds in reverse order), after {args.warmup:g} s "
            f"warm-up each; KV v2, 64-byte value, {args.keys} keys in turn",
            'Figures are medians over the rounds; "cost" compares through-HAProxy with the direct variant on the line '
            "(p99: how much higher; req/s: how much lower)",
        ],
    )
    lines += [
        "| Op | Variant | req/s | p50 ms | p99 ms | Errors | CPU % nodes / HAProxy / Consul | p99 per round ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for v in all_variants:
        errors = sum(r.errors for r in v.runs if not r.error)
        failed = [r.error for r in v.runs if r.error]
        cpu = " / ".join(
            ha_report.fmt(statistics.median([c[k] for c in v.cpu]) if v.cpu else None)
            for k in ("nodes", "haproxy", "consul")
        )
        rounds = ", ".join(f"{r.p99_ms:.0f}" if not r.error else "err" for r in v.runs)
        lines.append(
            f"| {v.op} | {v.label} | {ha_report.fmt(v.median('requests_per_s'))} | "
            f"{ha_report.fmt(v.median('p50_ms'), 1)} | "
            f"{ha_report.fmt(v.median('p99_ms'), 1)} | {errors}{' ⚠ ' + failed[0] if failed else ''} | {cpu} | "
            f"{rounds} |"
        )
    lines += [
        "",
        "## HAProxy's cost",
        "",
        "| Op | Compared with | p99 | p50 | req/s | Target (p99 ≤ +10 %) |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for op in ("write", "read"):
        front = next((v for v in all_variants if v.op == op and v.via_haproxy), None)
        for direct in (v for v in all_variants if v.op == op and not v.via_haproxy):
            if front is None:
                continue
            p99 = (front.median("p99_ms") or 0) / (direct.median("p99_ms") or float("inf")) - 1
            verdict = "met" if p99 <= 0.10 else "MISSED"
            lines.append(
                f"| {op} | {direct.label} | {_cost(front.median('p99_ms'), direct.median('p99_ms'))} | "
                f"{_cost(front.median('p50_ms'), direct.median('p50_ms'))} | "
                f"{_cost(front.median('requests_per_s'), direct.median('requests_per_s'), False)} | "
                f"{verdict} |"
            )
    if timers:
        lines += [
            "",
            "## Inside HAProxy (its request log, every request through it, warm-ups included)",
            "",
            "HAProxy's timers have 1 ms resolution. *Queue + connect* (Tw + Tc) is time HAProxy itself "
            "added; *node* (Tr) is the node's time to its response headers; *rest of response* "
            "(Ta − TR − Tw − Tc − Tr) is relaying the body, including any wait for the node to send it.",
            "",
            "| Backend | Requests | Queue + connect p50 / p99 / max ms | Node p50 / p99 ms | "
            "Rest of response p50 / p99 / max ms | Rest of response ≥ 30 ms |",
            "| --- | ---: | --- | --- | --- | ---: |",
        ]
        p = ha_report.percentile
        for backend, t in sorted(timers.items()):
            slow = sum(1 for x in t["transfer"] if x >= 30)
            lines.append(
                f"| {backend} | {len(t['wait'])} | {p(t['wait'], 50)} / {p(t['wait'], 99)} / {max(t['wait'])} | "
                f"{p(t['server'], 50)} / {p(t['server'], 99)} | {p(t['transfer'], 50)} / "
                f"{p(t['transfer'], 99)} / {max(t['transfer'])} | {slow} |"
            )
    if error:
        lines += ["", f"**Error:** {error}"]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.haproxy_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measured wrk run (default 6)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load per variant (default 2)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per variant (default 4)")
    parser.add_argument(
        "--threads",
        type=int,
        default=6,
        help="wrk threads, a multiple of 2 and 3 so every server gets as many (default 6)",
    )
    parser.add_argument("--write-connections", type=int, default=18, help="wrk connections for writes (default 18)")
    parser.add_argument("--read-connections", type=int, default=60, help="wrk connections for reads (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per node (default 2)")
    parser.add_argument("--keys", type=int, default=64, help="distinct keys in turn (default 64)")
    procs.add_output_args(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = ha_report.begin("haproxy_cost")
    if run is None:
        return 2
    started, workdir = run.started, run.workdir
    cluster = haproxy = None
    all_variants: list[Variant] = []
    timers: dict = {}
    error = ""
    try:
        cluster = ha.StrongroomHA(workdir / "strongroom", n=3, workers=args.workers).start(keys=args.keys)
        haproxy = ha.start_haproxy(cluster)
        all_variants = variants(cluster, haproxy)
        run_variants(cluster, haproxy, all_variants, args)
        timers = haproxy_timers(haproxy.log_path)
    except Exception as exc:
        error = " ".join(str(exc).split())[:400]
    finally:
        if haproxy is not None:
            haproxy.stop()
        if cluster is not None:
            cluster.stop()
    keep = args.keep_workdir or bool(error)
    report = render(all_variants, timers, error, args, started, run.elapsed(), run.load_before)
    if keep:
        report += f"\nConfigs and logs kept in {workdir.relative_to(procs.REPO)}.\n"
    ha_report.finish("haproxy_cost", report, started, workdir, keep, None if args.no_write else args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
