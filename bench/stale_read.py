"""Stale-read window: from a write acknowledged by the active node to the value visible on a performance standby.

Run: ``.venv/bin/python -m bench.stale_read`` (``--help`` for the knobs).

Three Strongroom nodes on one Consul agent.  Each sample writes a new value
to a KV v2 key on the active node; as soon as the write is acknowledged, a
performance standby (the two in turn) is read in a tight loop, without
``X-Vault-Index``, until it returns that value (bounded: ``--bound`` seconds).
A second series sends each read once with the ``X-Vault-Index`` the write
returned, and counts the reads that did not return the value just written.
Both series run on an idle cluster and again while other clients write to the
active node without pause.  The Markdown report is printed and written to
bench/results/stale_read-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import uuid
from dataclasses import dataclass, field

import requests

from bench import ha, ha_report, kv, procs
from bench.failover import WriteLoad


@dataclass
class Series:
    """One series of samples (one phase, one read mode)."""

    phase: str
    mode: str  # "no index" or "X-Vault-Index"
    upper: list[float] = field(default_factory=list)  # ack → response of the first read with the value
    lower: list[float] = field(default_factory=list)  # ack → request of the last read without it (0 if none)
    stale_first: int = 0  # samples whose first read returned an older value
    stale_reads: int = 0
    never: int = 0  # value not seen within the bound
    misses: int = 0  # X-Vault-Index reads that returned another value
    non_200: int = 0
    forwarded: int = 0  # answered by a node other than the standby asked
    read_ms: list[float] = field(default_factory=list)  # X-Vault-Index reads: latency
    write_ms: list[float] = field(default_factory=list)
    background: int = 0  # writes the background load had acknowledged by the end


def _value_of(answer: requests.Response) -> str | None:
    if answer.status_code != 200:
        return None
    return answer.json()["data"]["data"]["value"]


def sample_series(
    active: ha.Node, standbys: list[ha.Node], token: str, series: Series, count: int, bound: float
) -> None:
    headers = {"X-Vault-Token": token}
    writer = requests.Session()
    readers = {node.name: requests.Session() for node in standbys}
    for session in [writer, *readers.values()]:
        session.trust_env = False
    run = uuid.uuid4().hex[:6]
    for i in range(count):
        standby = standbys[i % len(standbys)]
        reader = readers[standby.name]
        path = f"/v1/secret/data/stale/{run}-k{i % 16}"
        value = uuid.uuid4().hex
        t_write = time.monotonic()
        answer = writer.post(active.url + path, json={"data": {"value": value}}, headers=headers, timeout=10)
        acked = time.monotonic()
        if answer.status_code != 200:
            raise procs.BenchSetupError(f"write to the active node answered {answer.status_code}: {answer.text[:200]}")
        series.write_ms.append(1000 * (acked - t_write))
        if series.mode == "X-Vault-Index":
            sent = time.monotonic()
            read = reader.get(
                standby.url + path, headers={**headers, "X-Vault-Index": answer.headers["X-Vault-Index"]}, timeout=10
            )
            series.read_ms.append(1000 * (time.monotonic() - sent))
            series.non_200 += read.status_code != 200
            series.misses += _value_of(read) != value
            series.forwarded += (
                read.headers.get("X-Strongroom-Node", standby.name) != standby.name
                or "X-Vault-Inconsistent" in read.headers
            )
            continue
        last_stale_sent = None
        deadline = acked + bound
        while True:
            sent = time.monotonic()
            read = reader.get(standby.url + path, headers=headers, timeout=10)
            got = time.monotonic()
            series.forwarded += read.headers.get("X-Strongroom-Node", standby.name) != standby.name
            if _value_of(read) == value:
                series.upper.append(1000 * (got - acked))
                series.lower.append(0.0 if last_stale_sent is None else 1000 * (last_stale_sent - acked))
                break
            series.stale_reads += 1
            if last_stale_sent is None:
                series.stale_first += 1
            last_stale_sent = sent
            if got >= deadline:
                series.never += 1
                break


def run(args) -> tuple[list[Series], str, float]:
    """Start the cluster, run every phase; returns the series, an error (or "") and the setup time."""
    started = time.monotonic()
    cluster = load = None
    out: list[Series] = []
    try:
        cluster = ha.StrongroomHA(args.workdir / "strongroom", n=3, workers=args.workers).start(keys=1)
        active = cluster.wait_settled()
        standbys = cluster.standbys()
        setup = time.monotonic() - started
        phases = [("idle", 0)] + (
            [(f"under load ({args.load_threads} writers)", args.load_threads)] if args.load_threads else []
        )
        for phase, threads in phases:
            if threads:
                load = WriteLoad(active.url, cluster.token, threads, max_seconds=600).start()
                procs.wait_for(
                    lambda load=load: sum(w.ok for w in load.writes) >= 20, 30, "the background writes to flow"
                )
            for mode in ("no index", "X-Vault-Index"):
                series = Series(phase, mode)
                print(f"  {phase}, {mode}: {args.writes} writes", file=sys.stderr, flush=True)
                sample_series(active, standbys, cluster.token, series, args.writes, args.bound)
                if load is not None:
                    series.background = sum(w.ok for w in load.writes)
                out.append(series)
            if load is not None:
                load.stop()
                load = None
        return out, "", setup
    except Exception as exc:
        return out, " ".join(str(exc).split())[:400], time.monotonic() - started
    finally:
        if load is not None:
            load.stop()
        if cluster is not None:
            cluster.stop()


def render(series: list[Series], error: str, args, started: dt.datetime, elapsed: float, load_before: str) -> str:
    p = ha_report.percentile
    lines = ha_report.header(
        "Stale-read benchmark",
        started,
        load_before,
        elapsed,
        [
            f"Cluster: 3 Strongroom nodes ({args.workers} gunicorn workers each) on one Consul agent; "
            "writes straight to the active node, reads straight to the two performance standbys in turn",
            f"Samples: {args.writes} writes per series (64-byte hex values, 16 keys in turn); a value not seen within "
            f"{args.bound:g} s counts as never seen",
            "Window: from the write's acknowledgement (its response received) to the response of the first "
            "standby read that returned the new value (upper bound: it includes one read's round trip); the lower "
            "bound is the request time of the last read that still returned an older value (0 when the first read "
            "was fresh)",
        ],
    )
    lines += [
        "## Without X-Vault-Index",
        "",
        "| Phase | Samples | Window p50 ms | Window p99 ms | max ms | Lower bound p99 ms | "
        "First read stale | Never seen | Forwarded | Write p50 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in (s for s in series if s.mode == "no index"):
        lines.append(
            f"| {s.phase} | {len(s.upper) + s.never} | {ha_report.fmt(p(s.upper, 50), 1)} | "
            f"{ha_report.fmt(p(s.upper, 99), 1)} | "
            f"{ha_report.fmt(max(s.upper, default=None), 1)} | {ha_report.fmt(p(s.lower, 99), 1)} | {s.stale_first} | "
            f"{s.never} | {s.forwarded} | {ha_report.fmt(p(s.write_ms, 50), 1)} |"
        )
    lines += [
        "",
        "## With X-Vault-Index (one read per write)",
        "",
        "| Phase | Reads | Misses (older value) | Non-200 | Forwarded or X-Vault-Inconsistent | "
        "Read p50 ms | Read p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in (s for s in series if s.mode == "X-Vault-Index"):
        lines.append(
            f"| {s.phase} | {len(s.read_ms)} | {s.misses} | {s.non_200} | {s.forwarded} | "
            f"{ha_report.fmt(p(s.read_ms, 50), 1)} | {ha_report.fmt(p(s.read_ms, 99), 1)} |"
        )
    loaded = [s for s in series if s.background]
    if loaded:
        lines += [
            "",
            f"The background writers had {loaded[-1].background} writes acknowledged by the end of the loaded phase.",
        ]
    worst = max((p(s.upper, 99) or 0 for s in series if s.mode == "no index"), default=None)
    misses = sum(s.misses for s in series)
    lines += [
        "",
        f"Target: window p99 ≤ 100 ms — worst series {ha_report.fmt(worst, 1)} ms: "
        f"{'met' if worst is not None and worst <= 100 else 'MISSED'}; X-Vault-Index misses: {misses} "
        f"(target 0: {'met' if misses == 0 and series else 'MISSED'}).",
    ]
    if error:
        lines += ["", f"**Error:** {error}"]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stale_read", description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=500, help="writes per series (default 500)")
    parser.add_argument("--bound", type=float, default=2.0, help="seconds a standby is polled per write (default 2)")
    parser.add_argument(
        "--load-threads",
        type=int,
        default=4,
        help="background writers to the active node in the loaded phase (default 4; 0 skips it)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per node (default 2)")
    procs.add_output_args(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs.stop_on_sigterm()
    started = dt.datetime.now(dt.UTC)
    load_before, t0 = kv._loadavg(), time.monotonic()
    args.workdir = ha_report.workdir_for("stale_read", started)
    series, error, _ = run(args)
    keep = args.keep_workdir or bool(error)
    report = render(series, error, args, started, time.monotonic() - t0, load_before)
    if keep:
        report += f"\nConfigs and logs kept in {args.workdir.relative_to(procs.REPO)}.\n"
    ha_report.finish("stale_read", report, started, args.workdir, keep, None if args.no_write else args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
