"""KV v2 write and read of a 64-byte value: Strongroom beside raw Consul, OpenBao and a trivial Falcon app.

Run: ``.venv/bin/python -m bench.kv`` (or ``bench/kv.sh``; ``--help`` for the knobs).

Every target is started on 127.0.0.1 and prepared (initialised, unsealed, KV v2
at secret/, every key written once); then, for writes and then reads, each is
warmed up and driven by wrk with bench/lua/write.lua or bench/lua/read.lua at
each connection count, the targets one after the other within each cell (only
one is ever under load).  A target that cannot be prepared gets its error in
its table rows, never numbers.  The Markdown report is
printed and written to bench/results/kv-<date>.md.

``--targets strongroom-memraft`` adds a reference row: Strongroom on a Consul
agent in ``-dev`` mode (raft's log in memory, nothing durable), beside the
agent on disk that the ``strongroom`` row stores in.  The difference between
the two rows is what Consul's raft log on disk costs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import ha_report, procs, pyspy, wrk

TARGETS = ("strongroom", "openbao", "consul", "falcon", "strongroom-memraft")
#: What a run measures unless ``--targets`` says otherwise (strongroom-memraft is a reference, asked for by name).
DEFAULT_TARGETS = TARGETS[:4]
TITLES = {
    "strongroom": "Strongroom (Consul storage)",
    "openbao": "OpenBao (raft storage)",
    "consul": "raw Consul KV",
    "falcon": "trivial Falcon app",
    "strongroom-memraft": "Strongroom on Consul -dev (raft in memory; a reference, not durable)",
}
#: The targets that store in a Consul agent of their own, and how it is started.
CONSUL_AGENTS = {
    "strongroom": procs.start_consul,
    "strongroom-memraft": procs.start_consul_in_memory,
    "consul": procs.start_consul,
}
STRONGROOM_TARGETS = ("strongroom", "strongroom-memraft")
OPS = ("write", "read")
VAULT_PREFIX = "/v1/secret/data/bench/k"
CONSUL_PREFIX = "/v1/kv/strongroom-bench/raw/k"
# 64 bytes, the same for every target and every run.
VALUE = hashlib.sha256(b"strongroom bench kv value").hexdigest()
assert len(VALUE.encode()) == 64


@dataclass
class Target:
    """One prepared server: where wrk sends requests and with what settings."""

    name: str
    url: str = ""
    env: dict[str, dict[str, str]] = field(default_factory=dict)  # per op: BENCH_* variables
    error: str = ""
    stop: object = None  # callable stopping what this target started
    root_pid: int | None = None  # for RSS and CPU of the process tree
    storage_pid: int | None = None  # the Consul agent Strongroom stores in
    note: str = ""


@dataclass
class Row:
    target: str
    op: str
    connections: int
    result: wrk.WrkResult
    cpu: CpuShare | None = None


@dataclass
class CpuShare:
    """CPU used during one wrk run, in % of one core: the target's own processes, its gunicorn workers
    one by one, and the Consul agent it stores in (Strongroom only)."""

    own: float
    workers: list[float]
    storage: float | None = None


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.kv", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=float(os.environ.get("BENCH_DURATION", "10")),
        help="seconds per measured wrk run (default 10, env BENCH_DURATION)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=float(os.environ.get("BENCH_WARMUP", "2")),
        help="seconds of unmeasured load per target and operation before measuring (default 2)",
    )
    parser.add_argument(
        "--connections",
        default=os.environ.get("BENCH_CONNECTIONS", "16,64"),
        help="comma-separated wrk connection counts (default 16,64)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=int(os.environ.get("BENCH_ROUNDS", "1")),
        help="measured runs per target and cell, the targets taking turns (first, then last, ...); the report "
        "keeps each target's median run by req/s (default 1)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("BENCH_WRK_THREADS", "1")),
        help="wrk threads (default 1: wrk shares the machine with the servers)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=_cores(),
        help="gunicorn workers for Strongroom and the Falcon app (default: one per core, as a node)",
    )
    parser.add_argument("--keys", type=int, default=64, help="distinct keys written and read in turn (default 64)")
    parser.add_argument(
        "--token",
        choices=("root", "policy"),
        default=os.environ.get("BENCH_TOKEN", "root"),
        help="the token of Strongroom's and OpenBao's requests: the root token, or a token with a three-path "
        "policy (procs.BENCH_POLICY: the ACL check on the hot path); default root",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record each Strongroom worker with py-spy during every measured run; the raw stacks go to "
        "<workdir>/profiles (kept) and the report gets the top functions per operation",
    )
    parser.add_argument(
        "--targets",
        default=",".join(DEFAULT_TARGETS),
        help=f"comma-separated subset of {','.join(TARGETS)} (default {','.join(DEFAULT_TARGETS)}; "
        "strongroom-memraft: Strongroom on a Consul agent in -dev mode, raft in memory, the cost of "
        "Consul's raft log on disk taken out)",
    )
    procs.add_output_args(parser)
    args = parser.parse_args(argv)
    args.connections = [int(c) for c in args.connections.split(",") if c.strip()]
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {','.join(TARGETS)}")
    return args


# --- preparing targets ------------------------------------------------------------------------


def _vault_env(token: str, keys: int) -> dict[str, dict[str, str]]:
    body = json.dumps({"data": {"value": VALUE}})
    return {
        "write": wrk.kv_env(VAULT_PREFIX, keys, token, method="POST", body=body),
        "read": wrk.kv_env(VAULT_PREFIX, keys, token),
    }


def prepare_consul(consul: procs.Consul, args) -> Target:
    procs.populate_consul(consul, CONSUL_PREFIX, args.keys, VALUE)
    return Target(
        "consul",
        consul.url,
        {
            "write": wrk.kv_env(CONSUL_PREFIX, args.keys, method="PUT", body=VALUE),
            "read": wrk.kv_env(CONSUL_PREFIX, args.keys),
        },
        root_pid=consul.pid,
        note=f"started by {consul.how}",
    )


def prepare_vault_api(name: str, server: procs.VaultAPIServer, args, storage_pid: int | None = None) -> Target:
    procs.populate_kv2(server, VAULT_PREFIX, args.keys, VALUE)
    token = server.token if args.token == "root" else procs.policy_token(server)
    return Target(
        name,
        server.url,
        _vault_env(token, args.keys),
        stop=server.service.stop,
        root_pid=server.service.pid,
        storage_pid=storage_pid,
    )


def prepare(name: str, consul: procs.Consul | None, workdir: Path, args) -> Target:
    """Start and prepare one target; on failure return it with ``error`` set and nothing left running."""
    server = None
    try:
        if name == "consul":
            if consul is None:
                raise procs.BenchSetupError("Consul did not start")
            return prepare_consul(consul, args)
        if name == "falcon":
            service, url = procs.start_trivial(workdir / "falcon", args.workers)
            return Target(
                name,
                url,
                _vault_env("", args.keys),
                stop=service.stop,
                root_pid=service.pid,
                note="gunicorn settings: strongroom.server.gunicorn_conf",
            )
        if name == "openbao":
            server = procs.start_openbao(workdir / "openbao")
        elif name in STRONGROOM_TARGETS:
            if consul is None:
                raise procs.BenchSetupError("Consul did not start")
            server = procs.start_strongroom(workdir / name, consul, args.workers)
            return prepare_vault_api(name, server, args, storage_pid=consul.pid)
        return prepare_vault_api(name, server, args)
    except BaseException as exc:  # an Exception is reported in the table, never turned into numbers
        if server is not None:
            server.service.stop()
        if not isinstance(exc, Exception):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        return Target(name, error=f"{name} not ready: {message[:300]}".replace("|", "\\|"))


# --- measuring ---------------------------------------------------------------------------------


def rss_report(target: Target) -> list[tuple[str, int | None, int | None]]:
    """VmRSS and RssAnon (KiB) of the process tree: the root, the gunicorn master and every worker."""
    if target.root_pid is None:
        return []
    workers = procs.gunicorn_workers(target.root_pid)
    tree = procs.with_descendants(target.root_pid)
    rows = []
    for pid in tree:
        if pid in workers:
            role = f"worker pid {pid}"
        elif "gunicorn" in procs.cmdline(pid):
            role = "gunicorn master"
        else:
            role = "node core" if pid == target.root_pid else f"other pid {pid}"
        rows.append((role, procs.rss_kib(pid), procs.rss_anon_kib(pid)))
    return rows


def _measured(target: Target, op: str, connections: int, args) -> Row:
    """One wrk run, with the CPU the target's processes used meanwhile (and Strongroom's workers'
    profiles with ``--profile``)."""
    tree = procs.with_descendants(target.root_pid) if target.root_pid else []
    workers = procs.gunicorn_workers(target.root_pid) if target.root_pid else []
    storage = [target.storage_pid] if target.storage_pid else []
    recorder = None
    if args.profile and target.name == "strongroom" and workers:
        recorder = pyspy.Recorder(workers, args.duration, args.profile_dir, f"{op}-c{connections}").start()
    meter = procs.CpuMeter({"own": tree, "storage": storage, **{f"worker {pid}": [pid] for pid in workers}}).start()
    result = wrk.run(
        target.url, op, target.env[op], connections=connections, duration_s=args.duration, threads=args.threads
    )
    share = meter.stop()
    if recorder is not None:
        args.profiles.setdefault(op, []).extend(recorder.stop())
    cpu = (
        CpuShare(
            own=share["own"],
            workers=[share[f"worker {pid}"] for pid in workers],
            storage=share["storage"] if storage else None,
        )
        if tree
        else None
    )
    return Row(target.name, op, connections, result, cpu)


def _median(rows: list[Row]) -> Row:
    """The run with the median req/s (the lower middle of an even count); a failed run if any failed."""
    failed = [r for r in rows if r.result.error or r.result.requests_per_s is None]
    if failed:
        return failed[0]
    return sorted(rows, key=lambda r: r.result.requests_per_s or 0.0)[(len(rows) - 1) // 2]


def measure(targets: list[Target], args) -> list[Row]:
    """Every (operation, connections) cell for every target, the targets back to back within a cell.

    Only one target is under load at any moment, and a cell's measurements are
    seconds apart, so load from elsewhere on the machine drifts over all
    targets alike instead of skewing the ratios.  With ``--rounds N`` the
    targets take turns N times per cell (in order, then in reverse, ...) and
    each keeps its median run: one 10 s run of OpenBao's writes moved by
    ± 15 % from one minute to the next here.
    """
    rows = []
    for op in OPS:
        ready = [t for t in targets if not t.error]
        rows += [Row(t.name, op, c, wrk.WrkResult(error=t.error)) for t in targets if t.error for c in args.connections]
        if args.warmup > 0:
            for target in ready:
                wrk.run(
                    target.url,
                    op,
                    target.env[op],
                    connections=max(args.connections),
                    duration_s=args.warmup,
                    threads=args.threads,
                )
        for connections in args.connections:
            runs: dict[str, list[Row]] = {t.name: [] for t in ready}
            for turn in range(args.rounds):
                for target in ready if turn % 2 == 0 else ready[::-1]:
                    row = _measured(target, op, connections, args)
                    runs[target.name].append(row)
                    result = row.result
                    print(
                        f"  {target.name:<10} {op:<5} c={connections:<3} "
                        + (
                            result.error
                            or f"{result.requests_per_s:9.1f} req/s  p50 {result.p50_ms:.2f} ms  "
                            f"p99 {result.p99_ms:.2f} ms  errors {result.errors}"
                        ),
                        file=sys.stderr,
                        flush=True,
                    )
            rows += [_median(found) for found in runs.values()]
    order = {name: i for i, name in enumerate(args.targets)}
    return sorted(rows, key=lambda r: (order[r.target], OPS.index(r.op), args.connections.index(r.connections)))


# --- the report ----------------------------------------------------------------------------------


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    return f"{model}, {_cores()} cores (nproc), {mem_kib / 1024 / 1024:.1f} GiB RAM, Linux {platform.release()}"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _usable(result: wrk.WrkResult | None) -> bool:
    return result is not None and not result.error and result.failed_fraction < 0.01


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _per_request(cpu_percent: float, requests_per_s: float | None) -> str:
    """CPU µs per request from a CPU share (% of one core) and a request rate."""
    if not requests_per_s:
        return "—"
    return f"{cpu_percent * 10_000 / requests_per_s:.0f}"


def _result_lines(rows: list[Row]) -> list[str]:
    """One table row per measurement."""
    lines: list[str] = []
    reported: set[str] = set()
    for row in rows:
        r = row.result
        if r.error:
            # A target that could not be prepared has the same error in every row: say it once.
            note = "(as above)" if r.error in reported else r.error.replace(str(procs.REPO) + "/", "")
            reported.add(r.error)
            lines.append(
                f"| {TITLES[row.target]} | {row.op} | {row.connections} | — | — | — | — | — | — | — | {note} |"
            )
            continue
        errors = r.errors
        note = f"⚠ {100 * r.failed_fraction:.1f}% failed" if r.failed_fraction >= 0.01 else ""
        cpu, split, per_request = "—", "—", "—"
        if row.cpu is not None:
            cpu = f"{row.cpu.own:.0f}" + (f" + Consul {row.cpu.storage:.0f}" if row.cpu.storage is not None else "")
            split = "/".join(f"{w:.0f}" for w in row.cpu.workers) or "—"
            per_request = _per_request(row.cpu.own, r.requests_per_s)
            if row.cpu.storage is not None:
                per_request += " + " + _per_request(row.cpu.storage, r.requests_per_s)
        lines.append(
            f"| {TITLES[row.target]} | {row.op} | {row.connections} | {_fmt(r.requests_per_s, 0)} | "
            f"{_fmt(r.p50_ms)} | {_fmt(r.p99_ms)} | {errors} | {cpu} | {per_request} | {split} | {note} |"
        )
    return lines


def _ratio_lines(by_key: dict, args) -> list[str]:
    """Strongroom's req/s over each other target's, per operation and connection count (and, when
    measured, Strongroom on in-memory raft over OpenBao)."""
    pairs = [("strongroom", other) for other in ("openbao", "consul", "falcon")]
    header = "| Op | Conns | Strongroom / OpenBao | Strongroom / raw Consul | Strongroom / Falcon floor |"
    if "strongroom-memraft" in args.targets:
        pairs.append(("strongroom-memraft", "openbao"))
        header += " Strongroom on in-memory raft / OpenBao |"
    lines = ["", "## Ratios (req/s)", "", header, "| --- | ---: |" + " ---: |" * len(pairs)]
    for op in OPS:
        for connections in args.connections:
            cells = []
            for name, other in pairs:
                ours = by_key.get((name, op, connections))
                theirs = by_key.get((other, op, connections))
                if not _usable(ours):
                    cells.append("pending" if ours is None or ours.error else "⚠ errors")
                elif not _usable(theirs):
                    cells.append("—")
                else:
                    cells.append(f"{ours.requests_per_s / theirs.requests_per_s:.2f}")
            lines.append(f"| {op} | {connections} | " + " | ".join(cells) + " |")
    return lines


def _memory_lines(rss: dict[str, list], args) -> list[str]:
    """Each process's resident memory after the load."""
    lines = [
        "",
        "## Memory after the load (VmRSS; private: RssAnon, without shared and file pages)",
        "",
        "| Target | Process | RSS MiB | private MiB |",
        "| --- | --- | ---: | ---: |",
    ]
    for name in ("strongroom", "falcon"):
        if name not in args.targets:
            continue
        entries = rss.get(name)
        if not entries:
            lines.append(f"| {TITLES[name]} | — | pending |")
            continue
        for role, kib, anon in entries:
            lines.append(
                f"| {TITLES[name]} | {role} | {_fmt(None if kib is None else kib / 1024, 1)} "
                f"| {_fmt(None if anon is None else anon / 1024, 1)} |"
            )
        workers = [(kib, anon) for role, kib, anon in entries if role.startswith("worker") and kib]
        if workers:
            mean = sum(kib for kib, _ in workers) / len(workers) / 1024
            private = [anon for _, anon in workers if anon]
            mean_private = f"{sum(private) / len(private) / 1024:.1f}" if private else "—"
            lines.append(f"| {TITLES[name]} | **per worker, mean** | **{mean:.1f}** | **{mean_private}** |")
    return lines


def _profile_lines(args) -> list[str]:
    """With ``--profile``: per operation, the functions where Strongroom's workers spent their samples."""
    lines: list[str] = []
    for op, files in getattr(args, "profiles", {}).items():
        total, rows = pyspy.summary(files, top=20)
        if not total:
            continue
        lines += [
            "",
            f"## Where Strongroom's workers spent their time: {op} (py-spy, {total:,} samples over every run)",
            "",
            "| function | own % | inclusive % |",
            "| --- | ---: | ---: |",
        ]
        lines += [f"| `{name}` | {own:.1f} | {incl:.1f} |" for name, own, incl in rows]
    return lines


def render(
    rows: list[Row],
    rss: dict[str, list],
    notes: list[str],
    args,
    started: dt.datetime,
    elapsed: float,
    load_before: str,
) -> str:
    by_key = {(r.target, r.op, r.connections): r.result for r in rows}
    git_rev = _version(["git", "-C", str(procs.REPO), "rev-parse", "--short", "HEAD"])
    lines = [
        f"# KV v2 benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {machine()}",
        f"- Load: wrk {args.threads} thread(s), {args.duration:g} s per run after {args.warmup:g} s warm-up"
        + (
            f", {args.rounds} runs per target and cell taken in turns (each row: the median run by req/s), "
            if args.rounds > 1
            else ", "
        )
        + f"connections {', '.join(map(str, args.connections))}; value {len(VALUE)} bytes, {args.keys} keys in turn; "
        + ("the root token" if args.token == "root" else "a token with a three-path policy (`--token policy`)"),
        f"- Strongroom and the Falcon app: gunicorn, {args.workers} workers "
        f"({'one per core, the default' if args.workers == _cores() else 'set with --workers'}), "
        "gevent (strongroom.server.worker)",
        f"- Versions: Strongroom (work tree at {git_rev}), "
        f"{_version([procs.consul_binary_or_none() or 'consul', 'version'])}, "
        f"{' '.join(_version([str(procs.VENV_BIN / 'bao'), 'version']).split()[:2])}, "
        f"Python {platform.python_version()}, "
        f"{_version(['wrk', '--version']).split(' [')[0]}",
        f"- Whole run: {elapsed:.0f} s; load average (1/5/15 min) {load_before} before, {_loadavg()} after "
        f"(anything above ~0.5 before means other work shared the {_cores()} cores)",
        "",
        "CPU is in % of one core over the run: the target's own processes (for Strongroom, plus the Consul "
        "agent it stores in), then each gunicorn worker's share; CPU µs/req is that CPU over the requests "
        "served (for Strongroom: the node's, then its Consul agent's).",
        "",
        "| Target | Op | Conns | req/s | p50 ms | p99 ms | Errors | CPU % | CPU µs/req | Worker CPU % | Note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    lines += _result_lines(rows)
    lines += _ratio_lines(by_key, args)
    lines += _memory_lines(rss, args)
    lines += _profile_lines(args)
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


# --- main ----------------------------------------------------------------------------------------


def _measure_all(args, workdir: Path) -> tuple[list[Row], dict[str, list], list[str]]:
    """Start every target, measure it, stop it: the rows, each target's memory and the notes."""
    rows: list[Row] = []
    rss: dict[str, list] = {}
    notes: list[str] = []
    # Strongroom's storage and the raw Consul row get an agent each (same
    # configuration): raw PUTs at ~7,000/s fill the raft log, and the
    # snapshots and log compaction that follow slowed the Strongroom runs
    # after them on a shared agent by up to a quarter.
    agents: dict[str, procs.Consul] = {}
    targets: list[Target] = []
    try:
        for name, start_agent in CONSUL_AGENTS.items():
            if name in args.targets:
                try:
                    agents[name] = start_agent(workdir / f"consul-{name}")
                except Exception as exc:
                    notes.append(f"Consul did not start for {TITLES[name]}: {exc}")
        for name in args.targets:
            print(f"== starting {TITLES[name]}", file=sys.stderr, flush=True)
            targets.append(prepare(name, agents.get(name), workdir, args))
        rows = measure(targets, args)
        for target in targets:
            if not target.error and target.name in ("strongroom", "falcon"):
                rss[target.name] = rss_report(target)
            if target.note:
                notes.append(f"{TITLES[target.name]}: {target.note}")
    finally:
        for target in targets:
            if target.stop is not None:
                target.stop()
        for agent in agents.values():
            agent.stop()
    return rows, rss, notes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs.stop_on_sigterm()
    if problem := wrk.missing():
        print(f"error: {problem}", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    load_before = _loadavg()
    t0 = time.monotonic()
    workdir = procs.REPO / "run" / "bench" / f"kv-{started:%Y%m%dT%H%M%S}-{os.getpid()}"
    workdir.mkdir(parents=True)
    args.profile_dir = workdir / "profiles"
    args.profiles = {}
    if args.profile and pyspy.binary() is None:
        print("error: --profile needs py-spy (.venv/bin/pip install py-spy)", file=sys.stderr)
        return 2
    rows, rss, notes = _measure_all(args, workdir)
    failed = any(r.result.error for r in rows)
    if failed or args.keep_workdir or args.profile:
        notes.append(f"configs and logs kept in {workdir.relative_to(procs.REPO)}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    report = render(rows, rss, notes, args, started, time.monotonic() - t0, load_before)
    # The work folder was removed or kept above (its fate is in the report).
    ha_report.finish("kv", report, started, workdir, True, None if args.no_write else args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
