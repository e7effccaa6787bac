"""Logins: userpass and AppRole on Strongroom beside OpenBao (issue 14's benchmark).

Run: ``.venv/bin/python -m bench.login`` (``--help`` for the knobs).

Both servers are started on 127.0.0.1 (Strongroom on a Consul agent of its own,
one worker per core, the default; OpenBao with integrated raft storage), get a
userpass user and an AppRole role (a secret ID usable without limit), and are
driven in turn by wrk with ``bench/lua/login.lua``: the same login again and
again at each connection count.  Every successful login mints a token, so a
login is a password check (userpass: scrypt here, bcrypt in OpenBao) plus a
token write.  Beside them, the cost of the password hash alone on this machine
(one scrypt with Strongroom's parameters) bounds userpass from above.  The
Markdown report is printed and written to bench/results/login-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time

import requests

from bench import ha_report, procs, wrk
from bench.kv import machine

USER, PASSWORD = "bench", "correct horse battery staple"
METHODS = ("userpass", "approle")


def _call(server: procs.VaultAPIServer, method: str, path: str, body: dict | None = None) -> dict:
    answer = requests.request(
        method, f"{server.url}/v1/{path}", headers={"X-Vault-Token": server.token}, json=body, timeout=30
    )
    if answer.status_code not in (200, 204):
        raise procs.BenchSetupError(f"{server.service.name}: {method} {path} answered {answer.status_code}: "
                                    f"{answer.text[:300]}")  # fmt: skip
    return answer.json() if answer.content else {}


def prepare(server: procs.VaultAPIServer) -> dict[str, dict[str, str]]:
    """Enable both methods, make the user and the role; the wrk settings per method."""
    _call(server, "POST", "sys/auth/userpass", {"type": "userpass"})
    _call(server, "POST", f"auth/userpass/users/{USER}", {"password": PASSWORD, "token_policies": "default"})
    _call(server, "POST", "sys/auth/approle", {"type": "approle"})
    _call(server, "POST", "auth/approle/role/bench", {"token_policies": "default", "secret_id_num_uses": 0})
    role_id = _call(server, "GET", "auth/approle/role/bench/role-id")["data"]["role_id"]
    secret_id = _call(server, "POST", "auth/approle/role/bench/secret-id")["data"]["secret_id"]
    env = {
        "userpass": {"BENCH_PATH": f"/v1/auth/userpass/login/{USER}", "BENCH_BODY": json.dumps({"password": PASSWORD})},
        "approle": {
            "BENCH_PATH": "/v1/auth/approle/login",
            "BENCH_BODY": json.dumps({"role_id": role_id, "secret_id": secret_id}),
        },
    }
    for method, settings in env.items():  # one login each, so the first wrk request is not the first ever
        check = requests.post(server.url + settings["BENCH_PATH"], data=settings["BENCH_BODY"], timeout=30)
        if check.status_code != 200 or not check.json().get("auth", {}).get("client_token"):
            raise procs.BenchSetupError(f"{server.service.name}: {method} login answered {check.status_code}")
    return env


def scrypt_ms(rounds: int = 20) -> float:
    """One scrypt of Strongroom's userpass parameters, in milliseconds (median of ``rounds``)."""
    from strongroom.auth.userpass import password

    record = password.hash_password(PASSWORD)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        assert password.verify(record, PASSWORD)
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[16], help="wrk connections (default 16)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Strongroom workers (default: cores)")
    procs.add_output_args(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs.stop_on_sigterm()
    if problem := wrk.missing():
        print(f"error: {problem}", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    workdir = procs.REPO / "run" / "bench" / f"login-{started:%Y%m%dT%H%M%S}-{os.getpid()}"
    workdir.mkdir(parents=True)
    rows: list[tuple[str, str, int, wrk.WrkResult]] = []
    consul = procs.start_consul(workdir / "consul")
    servers: dict[str, procs.VaultAPIServer] = {}
    try:
        servers["strongroom"] = procs.start_strongroom(workdir / "strongroom", consul, args.workers)
        servers["openbao"] = procs.start_openbao(workdir / "openbao")
        envs = {name: prepare(server) for name, server in servers.items()}
        for method in METHODS:
            for connections in args.connections:
                for name, server in servers.items():
                    result = wrk.run(server.url, "login", envs[name][method], connections=connections,
                                     duration_s=args.duration, threads=args.threads)  # fmt: skip
                    rows.append((method, name, connections, result))
    finally:
        for server in servers.values():
            server.service.stop()
        consul.stop()
    lines = [
        f"# Logins — {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}. Strongroom: {args.workers} workers on Consul; OpenBao: raft. "
        f"wrk {args.threads} threads, {args.duration:.0f} s per run. One scrypt (n=2^14, r=8) here: "
        f"{scrypt_ms():.1f} ms.",
        "",
        "| method | server | connections | logins/s | p50 ms | p99 ms | non-2xx | ratio to OpenBao |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_key = {(m, n, c): r for m, n, c, r in rows}
    for method, name, connections, result in rows:
        base = by_key.get((method, "openbao", connections))
        ratio = (
            f"{result.requests_per_s / base.requests_per_s:.2f}"
            if result.requests_per_s and base is not None and base.requests_per_s
            else "—"
        )
        if result.error:
            lines.append(f"| {method} | {name} | {connections} | {result.error[:80]} | | | | |")
            continue
        lines.append(
            f"| {method} | {name} | {connections} | {result.requests_per_s:.0f} | {result.p50_ms:.1f} | "
            f"{result.p99_ms:.1f} | {result.non_2xx} | {ratio} |"
        )
    report = "\n".join(lines) + "\n"
    ha_report.finish("login", report, started, workdir, args.keep_workdir, None if args.no_write else args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
