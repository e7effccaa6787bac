"""Transit encrypt and decrypt of 128-byte payloads, single and batches of 100: Strongroom (one node, and a
3-node cluster behind HAProxy with 1, 2 and 3 nodes serving) beside OpenBao's transit engine, bare
``cryptography`` AES-GCM and the trivial Falcon endpoint.

Run: ``.venv/bin/python -m bench.transit`` (``--help`` for the knobs).

Targets, all started on 127.0.0.1 and measured in the same run:

* ``node``: one Strongroom node (Consul storage, ``--workers`` gunicorn workers), requests straight to it;
* ``cluster1``, ``cluster2``, ``cluster3``: three Strongroom nodes on the same Consul agent behind the
  real HAProxy (``strongroom.haproxy.render``, transit routing on), whose backends hold the active node
  alone, the active node and one performance standby, or all three;
* ``openbao``: ``bao server -dev`` (OpenBao 2.7.2, in-memory storage) with transit mounted;
* ``falcon``: ``bench/trivial_app.py`` under gunicorn with Strongroom's settings (same body, same workers):
  the framework ceiling;
* ``aesgcm``: ``cryptography``'s AESGCM in this process on one core, no HTTP: the physical limit.

Each key is ``aes256-gcm96`` (transit's default) and created before the load.  For each operation
(encrypt, decrypt, encrypt of a batch of 100, decrypt of a batch of 100) the HTTP targets run back to
back (a short warm-up each, then one wrk run at ``--connections``), so load from elsewhere on the
machine drifts over all of them alike.  The Markdown report is printed and written to
bench/results/transit-<date>.md.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench import ha, ha_report, kv, procs, wrk
from tests.helpers.procs import HAProxyProcess

TARGETS = ("node", "cluster1", "cluster2", "cluster3", "openbao", "falcon", "aesgcm")
TITLES = {
    "node": "Strongroom, one node",
    "cluster1": "Strongroom cluster via HAProxy, 1 node serving",
    "cluster2": "Strongroom cluster via HAProxy, 2 nodes serving",
    "cluster3": "Strongroom cluster via HAProxy, 3 nodes serving",
    "openbao": "OpenBao transit (bao server -dev)",
    "falcon": "trivial Falcon app",
    "aesgcm": "cryptography AES-GCM, 1 core, no HTTP",
}
OPS = ("encrypt", "decrypt", "encrypt x100", "decrypt x100")
BATCH = 100
KEY = "bench"
MOUNT = "transit"
#: 128 bytes, vault-benchmark's default payload.
PAYLOAD = bytes(range(128))
PLAINTEXT = base64.b64encode(PAYLOAD).decode()
#: HAProxy's health-check timeout here (the template's default is 1 s).  A check
#: waits in a worker's queue behind the requests before it: 16 connections of
#: batch requests on two saturated cores kept it over a second, HAProxy marked
#: the only serving node DOWN and cut its sessions (502, then 503).
CHECK_TIMEOUT = "5s"


@dataclass
class Target:
    """One prepared HTTP target: its URL, wrk settings per operation, and what to stop."""

    name: str
    url: str = ""
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    pids: Callable[[], list[int]] = list
    #: The Consul agent among ``pids`` (0: none), whose share the report also gives apart.
    consul_pid: int = 0
    error: str = ""
    note: str = ""


@dataclass
class Row:
    target: str
    op: str
    result: wrk.WrkResult
    cpu: float | None = None
    #: Of ``cpu``, the Consul agent's (Strongroom rows).
    consul_cpu: float | None = None

    @property
    def items_per_s(self) -> float | None:
        if self.result.error or self.result.requests_per_s is None:
            return None
        return self.result.requests_per_s * (BATCH if "x100" in self.op else 1)

    @property
    def cpu_us_per_request(self) -> float | None:
        """Microseconds of the target's CPU per request: what one request costs it, whatever it was given."""
        rps = self.result.requests_per_s
        return None if self.result.error or not rps or not self.cpu else self.cpu / 100 / rps * 1e6

    @property
    def consul_us_per_request(self) -> float | None:
        """Of ``cpu_us_per_request``, the Consul agent's (its background work included)."""
        rps = self.result.requests_per_s
        return None if self.consul_cpu is None or self.result.error or not rps else self.consul_cpu / 100 / rps * 1e6

    @property
    def items_per_cpu_s(self) -> float | None:
        """Items per second of CPU the target used: comparable when other work shares the cores."""
        items = self.items_per_s
        return None if items is None or not self.cpu else items / (self.cpu / 100)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.transit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=float(os.environ.get("BENCH_DURATION", "6")))
    parser.add_argument("--warmup", type=float, default=float(os.environ.get("BENCH_WARMUP", "1")))
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="gunicorn workers per node")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"subset of {','.join(TARGETS)}")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="runs per target and operation, the targets' order reversed every other round; the report keeps "
        "each one's run of median CPU per item (default 1)",
    )
    procs.add_output_args(parser)
    args = parser.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {','.join(TARGETS)}")
    return args


# --- preparing -------------------------------------------------------------------------------------


def _post(url: str, path: str, token: str, body: dict, timeout: float = 10.0) -> requests.Response:
    return requests.post(f"{url}/v1/{path}", json=body, headers={"X-Vault-Token": token}, timeout=timeout)


def mount_transit(url: str, token: str, timeout: float = 20.0) -> None:
    """Transit at ``transit/`` and the key ``bench``; retried while a just-unsealed node settles."""

    def ready() -> bool:
        mounted = _post(url, f"sys/mounts/{MOUNT}", token, {"type": "transit"})
        if mounted.status_code not in (200, 204) and "already in use" not in mounted.text:
            raise RuntimeError(f"mounting transit answered {mounted.status_code}: {mounted.text[:200]}")
        key = _post(url, f"{MOUNT}/keys/{KEY}", token, {})
        if key.status_code not in (200, 204):
            raise RuntimeError(f"creating the key answered {key.status_code}: {key.text[:200]}")
        return True

    procs.wait_for(ready, timeout, f"transit on {url}", interval=0.2)


def transit_env(url: str, token: str) -> dict[str, dict[str, str]]:
    """The wrk settings of each operation; the decrypts' ciphertexts are made here by the target itself."""
    single = _post(url, f"{MOUNT}/encrypt/{KEY}", token, {"plaintext": PLAINTEXT})
    single.raise_for_status()
    batch_in = [{"plaintext": PLAINTEXT}] * BATCH
    batch = _post(url, f"{MOUNT}/encrypt/{KEY}", token, {"batch_input": batch_in})
    batch.raise_for_status()
    ciphertexts = [{"ciphertext": item["ciphertext"]} for item in batch.json()["data"]["batch_results"]]
    bodies = {
        "encrypt": ("encrypt", {"plaintext": PLAINTEXT}),
        "decrypt": ("decrypt", {"ciphertext": single.json()["data"]["ciphertext"]}),
        "encrypt x100": ("encrypt", {"batch_input": batch_in}),
        "decrypt x100": ("decrypt", {"batch_input": ciphertexts}),
    }
    for op, (operation, body) in bodies.items():
        check = _post(url, f"{MOUNT}/{operation}/{KEY}", token, body)
        if check.status_code != 200:
            raise procs.BenchSetupError(f"{op} answered {check.status_code}: {check.text[:200]}")
    return {
        op: {"BENCH_PATH": f"/v1/{MOUNT}/{operation}/{KEY}", "BENCH_BODY": json.dumps(body), "BENCH_TOKEN": token}
        for op, (operation, body) in bodies.items()
    }


def start_openbao_dev(workdir: Path, timeout: float = 60.0) -> procs.Service:
    """``bao server -dev`` on a free port with the root token ``root``; returns the service (url in .url)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = procs.free_port()
    service = procs.Service(
        "openbao-dev",
        [
            procs.bao_binary(),
            "server",
            "-dev",
            "-dev-root-token-id=root",
            f"-dev-listen-address={procs.LOOPBACK}:{port}",
            "-log-level=warn",
        ],
        workdir / "openbao.log",
        env=procs.bao_env(),
    ).start()
    service.url = f"http://{procs.LOOPBACK}:{port}"  # type: ignore[attr-defined]
    procs.wait_health(service, service.url, (200,), timeout, f"openbao -dev on {service.url}")  # type: ignore[attr-defined]
    return service


class Stack:
    """Everything started for the HTTP targets, stopped together (by pid) in ``stop``."""

    def __init__(self, workdir: Path, args):
        self.workdir, self.args = workdir, args
        self.stoppers: list[Callable[[], None]] = []
        self.consul: procs.Consul | None = None

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            try:
                stop()
            except Exception as exc:  # keep stopping the rest
                print(f"stopping: {exc}", file=sys.stderr)

    def _consul(self) -> procs.Consul:
        if self.consul is None:
            self.consul = procs.start_consul(self.workdir / "consul")
            self.stoppers.append(self.consul.stop)
        return self.consul

    def node(self) -> Target:
        consul = self._consul()
        server = procs.start_strongroom(self.workdir / "node", consul, self.args.workers)
        self.stoppers.append(server.service.stop)
        mount_transit(server.url, server.token)
        return Target(
            "node",
            server.url,
            transit_env(server.url, server.token),
            pids=lambda: procs.with_descendants(server.service.pid) + [consul.pid],
            consul_pid=consul.pid,
            note="CPU of Strongroom rows includes their Consul agent's",
        )

    def cluster(self, wanted: list[str]) -> list[Target]:
        """One 3-node cluster; a HAProxy per serving count in ``wanted`` (cluster1..3)."""
        cluster = ha.StrongroomHA(self.workdir / "cluster", n=3, workers=self.args.workers, consul=self._consul())
        self.stoppers.append(cluster.stop)
        cluster.start(keys=0)
        active = cluster.active()
        assert active is not None
        mount_transit(active.url, cluster.token)
        standbys = cluster.standbys()
        for standby in standbys:

            def local(standby=standby) -> bool:
                answer = _post(standby.url, f"{MOUNT}/encrypt/{KEY}", cluster.token, {"plaintext": PLAINTEXT})
                return answer.status_code == 200 and answer.headers.get("X-Strongroom-Node") == standby.name

            procs.wait_for(local, 20, f"{standby.name} to serve transit itself")
        order = [active, *standbys]

        consul = self._consul()

        def pids() -> list[int]:
            return [pid for node in cluster.nodes() for pid in cluster.pids(node.name)] + [consul.pid]

        targets = []
        for name in wanted:
            serving = order[: int(name[-1])]
            front = HAProxyProcess(
                [{"name": n.name, "address": n.address} for n in serving], timeouts={"check": CHECK_TIMEOUT}
            ).start()
            self.stoppers.append(front.stop)
            front.wait_servers_up("strongroom_read", {n.name for n in serving}, timeout=20)
            front.wait_servers_up("strongroom_write", {active.name}, timeout=20)
            targets.append(
                Target(
                    name,
                    front.url,
                    transit_env(front.url, cluster.token),
                    pids=pids,
                    consul_pid=consul.pid,
                    note="cluster CPU: all three nodes (idle ones included); HAProxy's check timeout "
                    f"{CHECK_TIMEOUT} (template default 1s: see CHECK_TIMEOUT)",
                )
            )
        return targets

    def openbao(self) -> Target:
        service = start_openbao_dev(self.workdir / "openbao")
        self.stoppers.append(service.stop)
        url = service.url  # type: ignore[attr-defined]
        mount_transit(url, "root")
        return Target("openbao", url, transit_env(url, "root"), pids=lambda: procs.with_descendants(service.pid))

    def falcon(self) -> Target:
        service, url = procs.start_trivial(self.workdir / "falcon", self.args.workers)
        self.stoppers.append(service.stop)
        node_like = transit_env_without_server()
        return Target("falcon", url, node_like, pids=lambda: procs.with_descendants(service.pid))


def transit_env_without_server() -> dict[str, dict[str, str]]:
    """The trivial app's settings: the same paths and bodies (ciphertexts of the right size, never read)."""
    fake = "vault:v1:" + base64.b64encode(bytes(12 + len(PAYLOAD) + 16)).decode()
    bodies = {
        "encrypt": ("encrypt", {"plaintext": PLAINTEXT}),
        "decrypt": ("decrypt", {"ciphertext": fake}),
        "encrypt x100": ("encrypt", {"batch_input": [{"plaintext": PLAINTEXT}] * BATCH}),
        "decrypt x100": ("decrypt", {"batch_input": [{"ciphertext": fake}] * BATCH}),
    }
    return {
        op: {"BENCH_PATH": f"/v1/{MOUNT}/{operation}/{KEY}", "BENCH_BODY": json.dumps(body), "BENCH_TOKEN": ""}
        for op, (operation, body) in bodies.items()
    }


def prepare(stack: Stack, args) -> list[Target]:
    """Start every HTTP target asked for; one that fails gets its error, the others go on."""
    targets: list[Target] = []

    def attempt(names: list[str], start: Callable[[], list[Target]]) -> None:
        print(f"== starting {', '.join(names)}", file=sys.stderr, flush=True)
        try:
            targets.extend(start())
        except Exception as exc:
            message = " ".join(str(exc).split())[:300].replace("|", "\\|")
            targets.extend(Target(name, error=f"not ready: {message}") for name in names)

    if "node" in args.targets:
        attempt(["node"], lambda: [stack.node()])
    clusters = [t for t in args.targets if t.startswith("cluster")]
    if clusters:
        attempt(clusters, lambda: stack.cluster(clusters))
    if "openbao" in args.targets:
        attempt(["openbao"], lambda: [stack.openbao()])
    if "falcon" in args.targets:
        attempt(["falcon"], lambda: [stack.falcon()])
    return targets


# --- measuring -------------------------------------------------------------------------------------


def measure(targets: list[Target], args) -> list[Row]:
    rows: list[Row] = []
    for op in OPS:
        runs: dict[str, list[Row]] = {}
        for round_ in range(max(args.rounds, 1)):
            for target in targets if round_ % 2 == 0 else targets[::-1]:
                runs.setdefault(target.name, []).append(measure_one(target, op, args))
        rows += [median_row(runs[target.name]) for target in targets]
    return rows


def median_row(runs: list[Row]) -> Row:
    """The run of median CPU per item (a run without that figure counts as the costliest)."""
    ranked = sorted(runs, key=lambda row: -(row.items_per_cpu_s or 0.0))
    return ranked[len(ranked) // 2]


def measure_one(target: Target, op: str, args) -> Row:
    """One wrk run of ``op`` against ``target`` (after its warm-up), with the CPU its processes used."""
    if target.error:
        return Row(target.name, op, wrk.WrkResult(error=target.error))
    env = target.env[op]
    if args.warmup > 0:
        wrk.run(target.url, "transit", env, connections=args.connections, duration_s=args.warmup, threads=args.threads)
    meter = procs.CpuMeter({"own": target.pids(), "consul": [target.consul_pid] if target.consul_pid else []}).start()
    result = wrk.run(
        target.url, "transit", env, connections=args.connections, duration_s=args.duration, threads=args.threads
    )
    share = meter.stop()
    row = Row(target.name, op, result, share["own"], share["consul"] if target.consul_pid else None)
    print(
        f"  {target.name:<9} {op:<13} "
        + (
            result.error
            or f"{row.items_per_s:10.0f} items/s  p50 {result.p50_ms:.2f} ms  errors {result.errors}  "
            f"CPU {_fmt(row.cpu_us_per_request)} us/request"
        ),
        file=sys.stderr,
        flush=True,
    )
    return row


def aesgcm_rows(duration: float) -> list[Row]:
    """AES-256-GCM with ``cryptography`` in this process (one core): the same four operations, no HTTP."""
    key = AESGCM(os.urandom(32))
    sealed = [(nonce := os.urandom(12), key.encrypt(nonce, PAYLOAD, None)) for _ in range(BATCH)]

    def encrypt_one() -> None:
        nonce = os.urandom(12)
        key.encrypt(nonce, PAYLOAD, None)

    def decrypt_one() -> None:
        key.decrypt(*sealed[0], None)

    def encrypt_batch() -> None:
        for _ in range(BATCH):
            encrypt_one()

    def decrypt_batch() -> None:
        for nonce, ciphertext in sealed:
            key.decrypt(nonce, ciphertext, None)

    rows = []
    for op, work in zip(OPS, (encrypt_one, decrypt_one, encrypt_batch, decrypt_batch), strict=True):
        count, started = 0, time.perf_counter()
        cpu = time.process_time()
        while (elapsed := time.perf_counter() - started) < duration:
            for _ in range(100):
                work()
            count += 100
        result = wrk.WrkResult(requests_per_s=count / elapsed, requests=count)
        rows.append(Row("aesgcm", op, result, 100 * (time.process_time() - cpu) / elapsed))
    return rows


# --- the report ----------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _usable(row: Row | None) -> bool:
    return row is not None and not row.result.error and row.result.failed_fraction < 0.01


def render(rows: list[Row], targets: list[Target], args, started: dt.datetime, elapsed: float, load: str) -> str:
    by = {(r.target, r.op): r for r in rows}
    git_rev = kv._version(["git", "-C", str(procs.REPO), "rev-parse", "--short", "HEAD"])
    lines = [
        f"# Transit benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {kv.machine()}",
        f"- Load: wrk {args.threads} thread, {args.connections} connections, {args.duration:g} s per run after "
        f"{args.warmup:g} s warm-up, {args.rounds} round(s) (the run of median CPU per item kept); "
        f"payload {len(PAYLOAD)} bytes, batches of {BATCH}; key aes256-gcm96",
        f"- Strongroom and the Falcon app: gunicorn, {args.workers} workers per node; the cluster: 3 nodes on one "
        "Consul agent (shared with the single node), HAProxy 2.6 in front",
        f"- Versions: Strongroom at {git_rev}, "
        f"{' '.join(kv._version([str(procs.VENV_BIN / 'bao'), 'version']).split()[:2])}, "
        f"{kv._version([procs.consul_binary_or_none() or 'consul', 'version'])}, "
        f"{kv._version(['wrk', '--version']).split(' [')[0]}",
        f"- Whole run: {elapsed:.0f} s; load average {load} before, {kv._loadavg()} after",
        "",
        "items/s counts plaintexts (or ciphertexts): a batch request carries 100.  CPU: % of one core used by the "
        "target's processes during the run (Strongroom rows: its nodes, all three for the cluster, and the Consul "
        "agent); CPU µs per request is that share over req/s, with the Consul agent's part in brackets (its "
        "background work, sessions and watches, included: it weighs more the fewer requests a loaded machine "
        "lets through); items per CPU-second is items/s over that share, the figure to compare when other work "
        "on the machine left the targets less than the whole machine.",
        "",
        "| Target | Op | req/s | items/s | p50 ms | p99 ms | Errors | CPU % | CPU µs per request (of it Consul) | "
        "items per CPU-s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    order = {name: i for i, name in enumerate(TARGETS)}
    for row in sorted(rows, key=lambda r: (order[r.target], OPS.index(r.op))):
        r = row.result
        if r.error:
            lines.append(f"| {TITLES[row.target]} | {row.op} | — | — | — | — | — | — | — | {r.error} |")
            continue
        flag = f" ⚠ {100 * r.failed_fraction:.1f}% failed" if r.failed_fraction >= 0.01 else ""
        consul = f" ({_fmt(row.consul_us_per_request)})" if row.consul_us_per_request is not None else ""
        lines.append(
            f"| {TITLES[row.target]} | {row.op} | {_fmt(r.requests_per_s)} | {_fmt(row.items_per_s)} | "
            f"{_fmt(r.p50_ms, 2)} | {_fmt(r.p99_ms, 2)} | {r.errors}{flag} | {_fmt(row.cpu)} | "
            f"{_fmt(row.cpu_us_per_request)}{consul} | {_fmt(row.items_per_cpu_s)} |"
        )
    lines += [
        "",
        "## Ratios (items/s; in brackets per CPU-second)",
        "",
        "| Op | node / OpenBao | cluster (3 serving) / OpenBao | cluster 3 / cluster 1 | node / Falcon | "
        "node / AES-GCM |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for op in OPS:
        cells = []
        for ours, theirs in (
            ("node", "openbao"),
            ("cluster3", "openbao"),
            ("cluster3", "cluster1"),
            ("node", "falcon"),
            ("node", "aesgcm"),
        ):
            a, b = by.get((ours, op)), by.get((theirs, op))
            ok = _usable(a) and _usable(b)
            if not (ok and a and b and a.items_per_s and b.items_per_s):
                cells.append("—")
                continue
            cell = f"{a.items_per_s / b.items_per_s:.2f}"
            if a.items_per_cpu_s and b.items_per_cpu_s:
                cell += f" ({a.items_per_cpu_s / b.items_per_cpu_s:.2f})"
            cells.append(cell)
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    notes = [t.note for t in targets if t.note]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in dict.fromkeys(notes)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs.stop_on_sigterm()
    if problem := wrk.missing():
        print(f"error: {problem}", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    load = kv._loadavg()
    t0 = time.monotonic()
    workdir = procs.REPO / "run" / "bench" / f"transit-{started:%Y%m%dT%H%M%S}-{os.getpid()}"
    workdir.mkdir(parents=True)
    stack = Stack(workdir, args)
    try:
        targets = prepare(stack, args)
        rows = measure(targets, args)
    finally:
        stack.stop()
    if "aesgcm" in args.targets:
        rows += aesgcm_rows(min(args.duration, 3.0))
    failed = any(r.result.error for r in rows)
    if failed or args.keep_workdir:
        targets.append(Target("kept", note=f"configs and logs kept in {workdir.relative_to(procs.REPO)}"))
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    report = render(rows, targets, args, started, time.monotonic() - t0, load)
    # The work folder was removed or kept above (its fate is in the report).
    ha_report.finish("transit", report, started, workdir, True, None if args.no_write else args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
