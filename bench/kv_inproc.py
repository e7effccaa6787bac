"""KV v2 writes and reads in one process, no HTTP: the CPU a request costs the application itself.

Run: ``.venv/bin/python -m bench.kv_inproc`` (one tree: the one on ``sys.path``), or
``--revert <commit>,...`` / ``--base <rev>`` to compare two trees (A: the base or this tree with those
commits undone, B: this tree), each measured in its own child process, alternately, ``--rounds`` times.

A node is built as the server builds an active one, minus the network:
in-memory storage behind the storage cache (``CachedBackend`` over a
``CoherenceTable`` in a temporary file, the node active with a lease that
does not run out), the barrier, the core and the Falcon app; requests are
WSGI calls with pre-built environs (Falcon's TestClient would cost more than
the request), for the root token or a token with the three-path
``procs.BENCH_POLICY``, over ``--keys`` keys in turn.  CPU is
``time.process_time`` over ``--requests`` requests, median of ``--repeats``
batches.  The figure excludes gunicorn, gevent and the sockets (see the
"floor" row of ``bench.kv``) and Consul: it is the part of a request that
Strongroom's own code decides, and it is unaffected by other work on the
machine except through caches.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VALUE = "0123456789abcdef" * 4


def _utcnow():
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def _node(tmp: str):
    """An unsealed in-process node with KV v2 at secret/ and its WSGI app; returns (app, root token)."""
    from falcon import testing

    import strongroom.api  # noqa: F401  (LIST before Falcon)
    from strongroom.api.app import create_app
    from strongroom.auth.methods import AUTH_TYPES
    from strongroom.core.core import Core
    from strongroom.core.seal import SealManager
    from strongroom.engines import ENGINE_TYPES
    from strongroom.storage.cache import CachedBackend
    from strongroom.storage.coherence import CoherenceTable
    from strongroom.storage.inmem import InmemBackend

    table = CoherenceTable.create(os.path.join(tmp, "coherence"))
    table.set_active(True)
    table.set_lease(time.monotonic() + 10**6)
    backend = CachedBackend(InmemBackend(), table)
    seal = SealManager(backend, _utcnow, storage_type="inmem")
    core = Core(backend, seal, backends=ENGINE_TYPES, auth_backends=AUTH_TYPES)
    app = create_app(core, node_id="inproc")
    client = testing.TestClient(app)
    init = client.simulate_put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json
    client.simulate_put("/v1/sys/unseal", json={"key": init["keys"][0]})
    root = init["root_token"]
    mounted = client.simulate_post(
        "/v1/sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}}, headers={"X-Vault-Token": root}
    )
    assert mounted.status_code in (200, 204), mounted.text
    return app, client, root


def _policy_token(client, root: str) -> str:
    from bench.procs import BENCH_POLICY

    headers = {"X-Vault-Token": root}
    client.simulate_put("/v1/sys/policies/acl/bench", json={"policy": BENCH_POLICY}, headers=headers)
    created = client.simulate_post("/v1/auth/token/create", json={"policies": ["bench"]}, headers=headers)
    return created.json["auth"]["client_token"]


def _environs(op: str, token: str, keys: int) -> list[tuple[dict, bytes]]:
    from falcon import testing

    body = json.dumps({"data": {"value": VALUE}}).encode()
    out = []
    for i in range(keys):
        path = f"/v1/secret/data/bench/k{i}"
        if op == "write":
            env = testing.create_environ(
                path=path,
                method="POST",
                headers={"X-Vault-Token": token, "Content-Type": "application/json"},
                body=body,
            )
        else:
            env = testing.create_environ(path=path, method="GET", headers={"X-Vault-Token": token})
        out.append((env, body if op == "write" else b""))
    return out


def measure(op: str, token_kind: str, keys: int, requests: int, repeats: int) -> dict:
    """CPU µs per request (median, min over ``repeats`` batches) of ``op`` in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        app, client, root = _node(tmp)
        token = root if token_kind == "root" else _policy_token(client, root)
        environs = _environs("write", token, keys)
        statuses: list[str] = []

        def start_response(status, headers, exc_info=None):
            statuses.append(status)

        def call(env, body):
            env = dict(env)
            env["wsgi.input"] = io.BytesIO(body)
            for _ in app(env, start_response):
                pass

        for env, body in environs:  # every key exists before reads; warms caches for writes
            call(env, body)
        batch = environs if op == "write" else _environs("read", token, keys)
        samples = []
        for _ in range(repeats):
            statuses.clear()
            t0 = time.process_time()
            for i in range(requests):
                env, body = batch[i % keys]
                call(env, body)
            samples.append((time.process_time() - t0) / requests * 1e6)
            bad = [s for s in statuses if not s.startswith("2")]
            assert not bad, bad[:3]
        return {"median": statistics.median(samples), "min": min(samples)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kv_inproc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default="write,read")
    parser.add_argument("--tokens", default="root,policy")
    parser.add_argument("--keys", type=int, default=64)
    parser.add_argument("--requests", type=int, default=2000, help="requests per batch (default 2000)")
    parser.add_argument("--repeats", type=int, default=5, help="batches per measurement (default 5)")
    parser.add_argument("--base", default="", help="git revision of tree A (with --revert: none)")
    parser.add_argument("--revert", default="", help="commits undone in this tree to make tree A")
    parser.add_argument("--rounds", type=int, default=3, help="A/B: child runs per tree, alternating (default 3)")
    parser.add_argument("--json", action="store_true", help="one JSON line of results (for the A/B driver)")
    args = parser.parse_args(argv)
    cells = [(op, tok) for op in args.ops.split(",") for tok in args.tokens.split(",")]
    if args.base or args.revert:
        return _ab(args, cells)
    results = {f"{op}/{tok}": measure(op, tok, args.keys, args.requests, args.repeats) for op, tok in cells}
    if args.json:
        print(json.dumps(results))
    else:
        for cell, r in results.items():
            print(f"{cell:<14} {r['median']:7.1f} µs/request (min {r['min']:.1f})")
    return 0


def _ab(args, cells) -> int:
    from bench import kv_ab, procs

    workdir = Path(tempfile.mkdtemp(prefix="kv-inproc-ab-", dir=procs.REPO / "run"))
    trees = kv_ab._trees(argparse.Namespace(base=args.base, revert=args.revert, test=""), workdir)
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    argv = [
        sys.executable,
        "-m",
        "bench.kv_inproc",
        "--json",
        "--ops",
        args.ops,
        "--tokens",
        args.tokens,
        "--keys",
        str(args.keys),
        "--requests",
        str(args.requests),
        "--repeats",
        str(args.repeats),
    ]
    for round_ in range(args.rounds):
        for name in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
            env = dict(os.environ, PYTHONPATH=f"{trees[name]}:{procs.REPO}")
            done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=procs.REPO, check=True)
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  round {round_} {name}: {runs[name][-1]}", file=sys.stderr, flush=True)
    load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    base = args.base or f"this tree with {args.revert} undone"
    print(f"# in-process KV A/B: A = {base}, B = this tree; load average {load_before} before, {load_after} after")
    print(f"{args.rounds} child runs per tree, each the median of {args.repeats} × {args.requests} requests")
    print("| cell | A µs/req | B µs/req | B/A |\n| --- | ---: | ---: | ---: |")
    for op, tok in cells:
        cell = f"{op}/{tok}"
        a = statistics.median(r[cell]["median"] for r in runs["A"])
        b = statistics.median(r[cell]["median"] for r in runs["B"])
        print(f"| {cell} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
