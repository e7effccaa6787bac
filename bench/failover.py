"""Failover: kill -9 of the active node under a steady write load through HAProxy, time to the next write.

Run: ``.venv/bin/python -m bench.failover`` (``--help`` for the knobs).

Two clusters, one after the other, each behind the real HAProxy rendered from
Strongroom's template (the same configuration for both): 3 Strongroom nodes on
one Consul agent, and 3 OpenBao nodes with integrated raft storage.  A few
client threads write KV v2 through HAProxy without pause for the whole run.
Each trial kills the active node with SIGKILL and measures the time from the
kill to the first write acknowledged (2xx) by another node; then the killed
node is started again, unsealed, and the cluster left to settle (one active
node, HAProxy agreeing, writes flowing) before the next trial.

The Strongroom cluster is measured behind each HAProxy configuration of
``--variants`` in turn (``VARIANTS``: the template's defaults with the failover
helper, and the same without it), and before each one's trials, at rest for
``--idle-seconds``: the ``sys/health`` requests each node answers per second
(its own request counter) and the CPU of HAProxy and of the nodes.  Failed
writes are counted per trial by status and by who answered (a node, or HAProxy
itself).  The Markdown report is printed and written to
bench/results/failover-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import ha, ha_report, kv, procs
from tests.helpers.procs import HAProxyProcess

TITLES = {"strongroom": "Strongroom (3 nodes, 1 Consul agent)", "openbao": "OpenBao (3 nodes, raft)"}
#: HAProxy configurations the Strongroom cluster is measured behind, as ``strongroom.haproxy.render`` options.
#: ``helper``: the template's defaults (observe layer7 mark-down, failover helper probing every 25 ms while
#: the write backend is empty and holding writes up to 3 s, down servers checked every 500 ms);
#: ``checks``: the same without the helper (down servers checked every 250 ms, no hold).
VARIANTS: dict[str, dict] = {"helper": {}, "checks": {"failover_lua": None}}
VARIANT_TITLES = {
    "helper": "failover helper (template defaults)",
    "checks": "checks only (failover_lua=None)",
}
BODY = json.dumps({"data": {"value": kv.VALUE}})


@dataclass
class Write:
    sent: float
    done: float
    ok: bool
    server: str  # the HAProxy server that answered, "" when none did
    status: int = 0  # the HTTP status the client saw, 0 for no answer (connection error, timeout)


class WriteLoad:
    """``threads`` clients writing through ``url`` back to back until stopped (each at most ``max_seconds``).

    A failed write is followed by a 10 ms pause, so a cluster without an
    active node is not flooded with instant 503s from HAProxy.
    """

    def __init__(self, url: str, token: str, threads: int, max_seconds: float):
        self.url, self.token = url, token
        self.max_seconds = max_seconds
        self.writes: list[Write] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def start(self) -> WriteLoad:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def _run(self, index: int) -> None:
        session = requests.Session()
        session.trust_env = False
        headers = {"X-Vault-Token": self.token, "Content-Type": "application/json"}
        deadline = time.monotonic() + self.max_seconds
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            n += 1
            sent = time.monotonic()
            try:
                answer = session.post(
                    f"{self.url}/v1/secret/data/failover/w{index}-{n % 64}", data=BODY, headers=headers, timeout=5
                )
                ok, status = 200 <= answer.status_code < 300, answer.status_code
                server = answer.headers.get("X-Strongroom-Route", "").rpartition("/")[2]
            except requests.RequestException:
                ok, server, status = False, "", 0
            with self._lock:
                self.writes.append(Write(sent, time.monotonic(), ok, server, status))
            if not ok:
                time.sleep(0.01)

    def since(self, moment: float) -> list[Write]:
        with self._lock:
            return [w for w in self.writes if w.done >= moment]

    def last_ok_before(self, moment: float) -> float | None:
        with self._lock:
            return max((w.done for w in self.writes if w.ok and w.done < moment), default=None)


@dataclass
class Trial:
    killed: str
    new_active: str = ""
    active_after: float | None = None  # a survivor's sys/health said 200
    first_write: float | None = None  # first 2xx from another node, after the kill
    failed: int = 0  # writes that failed between the kill and that first success
    failed_by: str = ""  # those failures by status and by who answered, e.g. "503 haproxy ×12"
    gap: float | None = None  # last acknowledged write before the kill to the first after it
    lingering_ok: int = 0  # writes sent after the kill and acknowledged by the killed node (gunicorn outliving it)
    lingered: float | None = None  # the killed node's last process gone, after the kill (Strongroom: its gunicorn)
    error: str = ""


@dataclass
class Idle:
    """The front door at rest (no client load): what its health checks cost."""

    seconds: float
    checks_per_s: dict[str, float]  # node name -> sys/health requests per second it answered
    cpu: dict[str, float]  # "haproxy", "nodes" -> % of one core


@dataclass
class Outcome:
    target: str
    variant: str = ""
    idle: Idle | None = None
    trials: list[Trial] = field(default_factory=list)
    error: str = ""
    setup_s: float = 0.0
    note: str = ""
    timing: str = "raft timing: OpenBao's defaults"


def watch_health(nodes: list[ha.Node], since: float, stop: threading.Event, found: dict) -> None:
    """Poll the survivors' sys/health every 25 ms; note the first to answer 200 and when."""
    while not stop.is_set():
        for node in nodes:
            if ha.health(node.url, timeout=0.5) == 200:
                found.update(name=node.name, at=time.monotonic() - since)
                return
        time.sleep(0.025)


def one_trial(cluster, haproxy, load: WriteLoad, timeout: float) -> Trial:
    active = cluster.wait_settled()
    ha.wait_routing(haproxy, cluster)
    # Writes must be flowing through the settled cluster before the kill.
    procs.wait_for(lambda: sum(w.ok for w in load.since(time.monotonic() - 0.5)) >= 3, 20, "writes to flow")
    survivors = [n for n in cluster.nodes() if n.name != active.name]
    trial = Trial(active.name)
    stop, found = threading.Event(), {}
    killed_at = time.monotonic()
    tree = cluster.kill(active.name)
    watcher = threading.Thread(target=watch_health, args=(survivors, killed_at, stop, found), daemon=True)
    watcher.start()
    deadline = killed_at + timeout
    first = None
    while first is None and time.monotonic() < deadline:
        time.sleep(0.02)
        first = next((w for w in load.since(killed_at) if w.ok and w.server and w.server != active.name), None)
    stop.set()
    watcher.join(5)
    after = load.since(killed_at)
    trial.lingering_ok = sum(1 for w in after if w.ok and w.server == active.name and w.sent > killed_at)
    trial.new_active, trial.active_after = found.get("name", ""), found.get("at")
    if first is None:
        trial.error = f"no write acknowledged within {timeout:.0f} s"
    else:
        trial.first_write = first.done - killed_at
        failures = [w for w in after if not w.ok and w.done <= first.done]
        trial.failed = len(failures)
        trial.failed_by = failure_summary(failures)
        before = load.last_ok_before(killed_at)
        trial.gap = None if before is None else first.done - before
        trial.new_active = trial.new_active or first.server
    gone = cluster.restart(active.name, tree)
    trial.lingered = None if gone is None else gone - killed_at
    return trial


def failure_summary(failures: list[Write]) -> str:
    """``"503 haproxy ×12, 0 ×1"``: how many failed writes got each status (0: no answer at all) from whom
    (a node's HAProxy server name, or ``haproxy`` when HAProxy answered itself)."""
    counts = Counter((w.status, w.server or ("haproxy" if w.status else "")) for w in failures)
    return ", ".join(f"{status} {who} ×{n}".replace("  ", " ") for (status, who), n in sorted(counts.items()))


def health_requests(cluster: ha.StrongroomHA, node: ha.Node) -> float:
    """How many ``sys/health`` requests ``node`` has answered (its request counter, every status)."""
    total = 0.0
    for line in cluster.metrics(node).splitlines():
        if line.startswith("strongroom_http_requests_total{") and 'route="sys/health"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def measure_idle(cluster: ha.StrongroomHA, haproxy: HAProxyProcess, seconds: float) -> Idle:
    """Health checks per node and CPU of HAProxy and the nodes over ``seconds`` without client load."""
    nodes = cluster.nodes()
    before = {n.name: health_requests(cluster, n) for n in nodes}
    meter = procs.CpuMeter(
        {"haproxy": [haproxy.pid], "nodes": [p for n in nodes for p in cluster.pids(n.name)]}
    ).start()
    t0 = time.monotonic()
    time.sleep(seconds)  # a measuring window, not a wait for a condition
    cpu = meter.stop()
    elapsed = time.monotonic() - t0
    after = {n.name: health_requests(cluster, n) for n in nodes}
    return Idle(elapsed, {name: (after[name] - before[name]) / elapsed for name in before}, cpu)


def start_front(cluster, options: dict) -> HAProxyProcess:
    """The real HAProxy in front of ``cluster``, rendered with ``options``, once its checks agree with the nodes."""
    haproxy = HAProxyProcess([{"name": n.name, "address": n.address} for n in cluster.nodes()], **options).start()
    try:
        ha.wait_routing(haproxy, cluster)
    except BaseException:
        haproxy.stop()
        raise
    return haproxy


def run_variant(cluster, name: str, variant: str, trials: int, args) -> Outcome:
    """``trials`` kills of ``cluster``'s active node behind HAProxy rendered as ``VARIANTS[variant]``."""
    outcome = Outcome(name, variant)
    haproxy = load = None
    t0 = time.monotonic()
    try:
        cluster.wait_settled()
        haproxy = start_front(cluster, VARIANTS[variant])
        if name == "strongroom" and args.idle_seconds > 0:
            outcome.idle = measure_idle(cluster, haproxy, args.idle_seconds)
        load = WriteLoad(haproxy.url, cluster.token, args.writers, max_seconds=args.max_seconds).start()
        outcome.setup_s = time.monotonic() - t0
        for index in range(trials):
            trial = one_trial(cluster, haproxy, load, args.timeout)
            outcome.trials.append(trial)
            shown = trial.error or f"{trial.first_write:.3f} s to the first write ({trial.new_active})"
            print(
                f"  {name}/{variant} trial {index + 1}/{trials}: killed {trial.killed}, {shown}",
                file=sys.stderr,
                flush=True,
            )
        cluster.wait_settled()
    except Exception as exc:
        outcome.error = " ".join(str(exc).split())[:400].replace("|", "\\|")
        print(f"  {name}/{variant}: {outcome.error}", file=sys.stderr, flush=True)
    finally:
        if load is not None:
            load.stop()
        if haproxy is not None:
            haproxy.stop()
    return outcome


def run_strongroom(workdir: Path, args) -> list[Outcome]:
    """Every variant in ``args.variants`` on one Strongroom cluster, one after the other."""
    cluster = None
    outcomes = []
    try:
        cluster = ha.StrongroomHA(workdir / "strongroom", n=3, workers=args.workers).start(keys=1)
        for variant in args.variants:
            trials = args.trials if variant == args.variants[0] else args.other_trials
            outcomes.append(run_variant(cluster, "strongroom", variant, trials, args))
    except Exception as exc:
        failed = Outcome("strongroom", "setup", error=" ".join(str(exc).split())[:400].replace("|", "\\|"))
        print(f"  strongroom: {failed.error}", file=sys.stderr, flush=True)
        outcomes.append(failed)
    finally:
        if cluster is not None:
            cluster.stop()
    return outcomes


def run_target(name: str, workdir: Path, args) -> Outcome:
    """OpenBao's cluster behind HAProxy with the template's defaults (Strongroom's: ``run_strongroom``)."""
    outcome = Outcome(name)
    trials = args.openbao_trials
    cluster = haproxy = load = None
    t0 = time.monotonic()
    try:
        cluster = ha.OpenBaoHA(workdir / name, n=3, performance_multiplier=args.openbao_multiplier).start(keys=1)
        haproxy = ha.start_haproxy(cluster)
        load = WriteLoad(haproxy.url, cluster.token, args.writers, max_seconds=args.max_seconds).start()
        outcome.setup_s = time.monotonic() - t0
        for index in range(trials):
            trial = one_trial(cluster, haproxy, load, args.timeout)
            outcome.trials.append(trial)
            shown = trial.error or f"{trial.first_write:.3f} s to the first write ({trial.new_active})"
            print(f"  {name} trial {index + 1}/{trials}: killed {trial.killed}, {shown}", file=sys.stderr, flush=True)
        cluster.wait_settled()
    except Exception as exc:
        outcome.error = " ".join(str(exc).split())[:400].replace("|", "\\|")
        print(f"  {name}: {outcome.error}", file=sys.stderr, flush=True)
    finally:
        if getattr(cluster, "rescues", 0):
            outcome.note = (
                f"{cluster.rescues} restarted node(s) stayed unhealthy in raft autopilot for 30 s "
                "and were restarted again between trials"
            )
        if load is not None:
            load.stop()
        if haproxy is not None:
            haproxy.stop()
        if cluster is not None:
            cluster.stop()
    return outcome


# --- the report ----------------------------------------------------------------------------------


def _summary_row(outcome: Outcome) -> str:
    title = _title(outcome)
    times = [t.first_write for t in outcome.trials if t.first_write is not None]
    lost = sum(1 for t in outcome.trials if t.first_write is None)
    if not times:
        return (
            f"| {title} | {len(outcome.trials)} | — | — | — | — | — | — | — | {outcome.error or 'no trial recovered'} |"
        )
    elected = [t.active_after for t in outcome.trials if t.active_after is not None]
    failed = sum(t.failed for t in outcome.trials)
    note = "; ".join(x for x in (outcome.error, f"{lost} trial(s) never recovered" if lost else "", outcome.note) if x)
    return (
        f"| {title} | {len(times)} | {ha_report.percentile(times, 50):.3f} | {ha_report.percentile(times, 99):.3f} | "
        f"{max(times):.3f} | {min(times):.3f} | {ha_report.fmt(ha_report.percentile(elected, 50), 3)} | "
        f"{ha_report.fmt(ha_report.percentile(elected, 99), 3)} | {failed / len(outcome.trials):.1f} | {note} |"
    )


def _title(outcome: Outcome) -> str:
    title = TITLES[outcome.target]
    if outcome.target == "openbao":
        title += f" ({outcome.timing})"
    if outcome.variant:
        title += f", {VARIANT_TITLES.get(outcome.variant, outcome.variant)}"
    return title


def _idle_rows(outcomes: list[Outcome]) -> list[str]:
    measured = [o for o in outcomes if o.idle is not None]
    if not measured:
        return []
    lines = [
        "Health checks and CPU at rest (no client load; checks per second each node answered, "
        "from its `sys/health` request counter; CPU in % of one core):",
        "",
        "| HAProxy configuration | window s | sys/health per s, per node | HAProxy CPU % | nodes CPU % (3 nodes) |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for o in measured:
        idle = o.idle
        assert idle is not None
        per_node = ", ".join(f"{rate:.1f}" for _, rate in sorted(idle.checks_per_s.items()))
        lines.append(
            f"| {VARIANT_TITLES.get(o.variant, o.variant)} | {idle.seconds:.0f} | {per_node} | "
            f"{idle.cpu.get('haproxy', 0):.2f} | {idle.cpu.get('nodes', 0):.1f} |"
        )
    return lines + [""]


def render(outcomes: list[Outcome], args, started: dt.datetime, elapsed: float, load_before: str) -> str:
    lines = ha_report.header(
        "Failover benchmark",
        started,
        load_before,
        elapsed,
        [
            f"Load: {args.writers} client threads writing KV v2 (64-byte value) through HAProxy back to back; "
            f"Strongroom nodes with {args.workers} gunicorn workers each",
            "Fault: SIGKILL of the active node's main process (Strongroom: the node core, whose gunicorn dies with it; "
            "OpenBao: `bao server`); then restart, unseal, and wait for one active node, HAProxy agreeing and writes "
            "flowing before the next trial",
            "Measured: from the kill to the first write acknowledged (2xx) by another node, as the client sees it "
            "through HAProxy (the same template and check timing in front of both clusters)",
        ],
    )
    lines += [
        "| Cluster | Trials | p50 s | p99 s | max s | min s | new active after, p50 s | p99 s | "
        "failed writes per trial | Note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    lines += [_summary_row(o) for o in outcomes]
    lines += [""] + _idle_rows(outcomes)
    lines += [
        "",
        "p99 is the nearest-rank percentile: with 20 trials or fewer it is the slowest trial. "
        '"New active after" is when a survivor\'s own `sys/health` first answered 200 (polled every 25 ms): '
        "the rest of the time to the first write is HAProxy's check noticing it.",
        "",
    ]
    for outcome in outcomes:
        if not outcome.trials:
            continue
        lines += [
            f"## {_title(outcome)}: every trial",
            "",
            f"Setup (start, init, unseal, HAProxy): {outcome.setup_s:.0f} s.",
            "",
            "| # | killed | new active | active after s | first write s | failed writes | failed by | write gap s | "
            "killed node's last process gone s | Note |",
            "| ---: | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- |",
        ]
        for i, t in enumerate(outcome.trials, 1):
            note = t.error or (
                f"{t.lingering_ok} write(s) sent after the kill acknowledged by the killed node"
                if t.lingering_ok
                else ""
            )
            lines.append(
                f"| {i} | {t.killed} | {t.new_active or '—'} | {ha_report.fmt(t.active_after, 3)} | "
                f"{ha_report.fmt(t.first_write, 3)} | {t.failed} | {t.failed_by or '—'} | {ha_report.fmt(t.gap, 3)} | "
                f"{ha_report.fmt(t.lingered, 2)} | "
                f"{note} |"
            )
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trials",
        type=int,
        default=int(os.environ.get("BENCH_FAILOVER_TRIALS", "20")),
        help="kills of the Strongroom active node behind the first of --variants (default 20)",
    )
    parser.add_argument(
        "--variants",
        default="helper,checks",
        help=f"HAProxy configurations in front of Strongroom, comma-separated from {','.join(VARIANTS)} "
        "(default helper,checks)",
    )
    parser.add_argument("--other-trials", type=int, default=10, help="kills behind each further variant (default 10)")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=10.0,
        help="window without client load in which each variant's health checks and CPU are measured (default 10)",
    )
    parser.add_argument(
        "--openbao-trials",
        type=int,
        default=int(os.environ.get("BENCH_FAILOVER_BAO_TRIALS", "5")),
        help="kills of the OpenBao active node (default 5: each takes ~30 s; 0 skips OpenBao)",
    )
    parser.add_argument(
        "--openbao-multiplier",
        type=int,
        default=None,
        help="raft performance_multiplier for OpenBao (default: unset, OpenBao's own default)",
    )
    parser.add_argument("--writers", type=int, default=4, help="client threads writing through HAProxy (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per Strongroom node (default 2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up on a trial after this many seconds")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="upper bound on the write load's life")
    parser.add_argument("--targets", default="strongroom,openbao", help="comma-separated: strongroom,openbao")
    procs.add_output_args(parser)
    args = parser.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not args.variants or set(args.variants) - set(VARIANTS):
        parser.error(f"--variants: choose from {','.join(VARIANTS)}")
    if set(args.targets) - set(TITLES):
        parser.error(f"unknown targets; choose from {','.join(TITLES)}")
    if args.openbao_trials == 0 and "openbao" in args.targets:
        args.targets.remove("openbao")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs.stop_on_sigterm()
    started = dt.datetime.now(dt.UTC)
    load_before, t0 = kv._loadavg(), time.monotonic()
    workdir = ha_report.workdir_for("failover", started)
    outcomes = []
    for name in args.targets:
        print(f"== {TITLES[name]}", file=sys.stderr, flush=True)
        if name == "strongroom":
            outcomes += run_strongroom(workdir, args)
            continue
        outcome = run_target(name, workdir, args)
        if args.openbao_multiplier is not None:
            outcome.timing = f"raft performance_multiplier = {args.openbao_multiplier}"
        outcomes.append(outcome)
    keep = args.keep_workdir or any(o.error or any(t.error for t in o.trials) for o in outcomes)
    report = render(outcomes, args, started, time.monotonic() - t0, load_before)
    if keep:
        report += f"\nConfigs and logs kept in {workdir.relative_to(procs.REPO)}.\n"
    ha_report.finish("failover", report, started, workdir, keep, None if args.no_write else args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
