"""The HAProxy front of a Strongroom cluster: its configuration, rendered.

``render(nodes, ...)`` fills ``templates/haproxy.cfg.j2``: one frontend that
sends GET, HEAD and LIST to a read backend (the active node and every
performance standby, checked with ``/v1/sys/health?perfstandbyok=true``) and
everything else to a write backend (the active node alone, checked with
``/v1/sys/health``), plus a stats page and HAProxy's built-in Prometheus
exporter.  The front door deletes the nodes' internal headers
(``INTERNAL_REQUEST_HEADERS``) from every client request.  ``strongroom
dev-cluster`` renders it today; the Ansible role renders the same template
with the same variable names (``haproxy/README.md``).  The write backend
takes a node out on its first refused connection or 5xx, and the failover
helper ``templates/strongroom_failover.lua`` finds the new active node within
``failover_probe_ms`` while none is up, holding writes meanwhile.
``server_states`` reads back what the running HAProxy thinks of each server.

https://developer.hashicorp.com/vault/api-docs/system/health
https://docs.haproxy.org/2.6/configuration.html
"""

from __future__ import annotations

import importlib.resources
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import jinja2

TEMPLATE = "haproxy.cfg.j2"

#: The failover helper the configuration loads (``lua-load``), as shipped in
#: the package: probes the nodes while the write backend has no server and
#: holds writes until it has one (``haproxy/README.md``, "Failover").
FAILOVER_LUA = str(importlib.resources.files("strongroom") / "templates" / "strongroom_failover.lua")
#: Where the Ansible role installs it, and what the example configuration names.
FAILOVER_LUA_INSTALLED = "/etc/haproxy/strongroom_failover.lua"

#: Health-check paths the two backends use; a node is in a backend while its
#: check answers 200.
WRITE_CHECK_PATH = "/v1/sys/health"
READ_CHECK_PATH = "/v1/sys/health?perfstandbyok=true"

DEFAULT_TIMEOUTS: Mapping[str, str] = {
    # A connect to a live node on the same network takes microseconds; 2 s
    # leaves room for a loaded host without holding a request on a dead one.
    "connect": "2s",
    "client": "30s",
    "server": "30s",
    "http-request": "10s",
    "http-keep-alive": "10s",
    # Requests waiting for a free server slot (maxconn) give up after this.
    "queue": "5s",
    # A stopped (SIGSTOP) or wedged node fails its check after this, so with
    # fall 2 it leaves the backends within about 2.5 s.
    "check": "1s",
}

#: Request headers the nodes set for each other and trust, which no client may
#: send: ``X-Strongroom-Forwarded`` (``api/forward.py``) marks a request a
#: standby already forwarded, and a node that sees it never forwards again, so
#: a client's copy would turn that client's writes on a standby into 503s.
#: The front door deletes them from every request (one ``http-request
#: del-header`` line each in the template, which Ansible renders too).
INTERNAL_REQUEST_HEADERS = ("X-Strongroom-Forwarded",)

#: Transit operations that only use a key: a performance standby serves them
#: (``api/logical.py``), so the front door sends their POSTs and PUTs to the
#: read backend.  The template lists the same names (``TRANSIT_READ_OPERATIONS``
#: there, for Ansible's rendering); a test keeps both equal.
TRANSIT_READ_OPERATIONS = ("encrypt", "decrypt", "rewrap", "sign", "verify", "hmac", "hash", "random")
#: A mount path as operators choose it (``sys/mounts/<path>``), without the
#: slashes around it: segments of letters, digits, ``_``, ``-`` and ``.``.
_MOUNT = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")

_NAME = re.compile(r"[A-Za-z0-9_.:-]+")
_HOST = re.compile(r"\*|[A-Za-z0-9_.:\[\]-]+")  # "*", a name, an IPv4 or IPv6 address; no scheme, no path
_DURATION = re.compile(r"\d+(us|ms|s|m|h|d)?")
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("strongroom", "templates"),
    undefined=jinja2.StrictUndefined,
    # Ansible's template module defaults, so both renderings are byte for byte equal.
    trim_blocks=True,
    lstrip_blocks=False,
    keep_trailing_newline=True,
    autoescape=False,
)


def render(
    nodes: Iterable[Mapping[str, str]],
    *,
    bind: str = "127.0.0.1:8200",
    stats_bind: str = "127.0.0.1:8404",
    prometheus_bind: str | None = None,
    tls_cert: str | None = None,
    backend_tls: bool = False,
    backend_ca_file: str | None = None,
    check_interval_ms: int = 500,
    fall: int = 2,
    rise: int = 1,
    retries: int = 3,
    timeouts: Mapping[str, str] | None = None,
    maxconn: int = 4096,
    stats_socket: str | None = None,
    log_target: str = "stdout format raw local0 info",
    route_header: bool = True,
    transit_mounts: Iterable[str] = ("transit",),
    failover_lua: str | None = FAILOVER_LUA,
    failover_probe_ms: int = 25,
    write_hold_ms: int = 3000,
) -> str:
    """The text of ``haproxy.cfg`` for a cluster of ``nodes``.

    ``nodes`` are ``{"name": "node1", "address": "10.0.0.5:8200"}`` (the address
    is what HAProxy connects to: host:port, no scheme).  ``bind`` is the front
    door (``tls_cert``: a PEM file holding certificate, chain and key turns TLS
    on there); ``stats_bind`` serves the stats page at ``/stats`` and the
    Prometheus exporter at ``/metrics``, ``prometheus_bind`` the exporter alone
    on a port of its own.  ``backend_tls`` makes HAProxy speak TLS to the nodes,
    verifying them against ``backend_ca_file`` (without one it does not verify:
    tests only).  Checks run every ``check_interval_ms`` (twice as often while a
    node changes state, and while it is down if ``failover_lua`` is None);
    ``fall`` failed checks take a node out,
    ``rise`` good ones put it back.  ``timeouts`` override ``DEFAULT_TIMEOUTS``
    key by key.  ``route_header`` adds ``X-Strongroom-Route: <backend>/<server>``
    to every response, so tests see which backend and node HAProxy picked.
    ``transit_mounts`` are the transit mount paths whose read-only operations
    (``TRANSIT_READ_OPERATIONS``) go to the read backend whatever the method
    (empty: every POST goes to the active node).

    ``failover_lua`` is the path, on the HAProxy host, of
    ``strongroom_failover.lua`` (default: the package's copy).  A write
    arriving while the write backend has no server waits up to
    ``write_hold_ms`` for one, and meanwhile the helper probes every node's
    ``/v1/sys/health`` every ``failover_probe_ms`` and puts the one answering
    200 in at once.  None, or ``write_hold_ms`` 0, leaves the helper out: such a
    write gets HAProxy's 503 at once, and down nodes are checked at half the
    interval instead.

    Raises ValueError for a value HAProxy would reject or misread.
    """
    nodes = [dict(node) for node in nodes]
    if not nodes:
        raise ValueError("nodes: at least one node is required")
    seen = set()
    for index, node in enumerate(nodes):
        name, address = node.get("name", ""), node.get("address", "")
        if not _NAME.fullmatch(name or ""):
            raise ValueError(f"nodes[{index}].name: {name!r} is not a valid HAProxy server name")
        if name in seen:
            raise ValueError(f"nodes[{index}].name: {name!r} appears twice")
        seen.add(name)
        _check_address(address, f"nodes[{index}].address")
    for key, value in (("bind", bind), ("stats_bind", stats_bind), ("prometheus_bind", prometheus_bind)):
        if value is not None:
            _check_address(value, key)
    mounts = [transit_mount(mount, index) for index, mount in enumerate(transit_mounts)]
    merged = dict(DEFAULT_TIMEOUTS)
    for key, value in (timeouts or {}).items():
        if key not in DEFAULT_TIMEOUTS:
            raise ValueError(f"timeouts: unknown timeout {key!r} (known: {', '.join(DEFAULT_TIMEOUTS)})")
        if not _DURATION.fullmatch(str(value)):
            raise ValueError(f"timeouts.{key}: {value!r} is not an HAProxy duration such as 500ms or 30s")
        merged[key] = str(value)
    for key, number, minimum in (
        ("check_interval_ms", check_interval_ms, 20),
        ("fall", fall, 1),
        ("rise", rise, 1),
        ("retries", retries, 0),
        ("maxconn", maxconn, 1),
        ("failover_probe_ms", failover_probe_ms, 5),
        ("write_hold_ms", write_hold_ms, 0),
    ):
        if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
            raise ValueError(f"{key}: must be an integer of at least {minimum}, got {number!r}")
    return _ENV.get_template(TEMPLATE).render(
        nodes=nodes,
        bind=bind,
        stats_bind=stats_bind,
        prometheus_bind=prometheus_bind,
        tls_cert=tls_cert,
        backend_tls=backend_tls,
        backend_ca_file=backend_ca_file,
        check_interval_ms=check_interval_ms,
        fall=fall,
        rise=rise,
        retries=retries,
        timeouts=merged,
        maxconn=maxconn,
        stats_socket=stats_socket,
        log_target=log_target,
        route_header=route_header,
        transit_mounts=mounts,
        failover_lua=failover_lua,
        failover_probe_ms=failover_probe_ms,
        write_hold_ms=write_hold_ms,
    )


def transit_mount(value: object, index: int) -> str:
    """A ``transit_mounts`` entry without its surrounding slashes; ValueError unless it is a mount path."""
    mount = value.strip("/") if isinstance(value, str) else ""
    segments = mount.split("/")
    if not _MOUNT.fullmatch(mount) or segments[0] == "sys" or any(set(part) == {"."} for part in segments):
        raise ValueError(f"transit_mounts[{index}]: {value!r} is not a mount path such as transit or team/transit")
    return mount


def _check_address(value: str, key: str) -> None:
    host, sep, port = (value or "").rpartition(":")
    if not sep or not _HOST.fullmatch(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{key}: expected host:port, got {value!r}")


def haproxy_binary() -> str:
    """Path of haproxy: ``$HAPROXY_BIN``, else on PATH, else ``/usr/sbin/haproxy``
    (Debian's, not on an ordinary user's PATH).  Raises RuntimeError if none."""
    env = os.environ.get("HAPROXY_BIN")
    if env:
        if os.access(env, os.X_OK):
            return env
        raise RuntimeError(f"HAPROXY_BIN={env!r} is not an executable file")
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if found is None:
        raise RuntimeError("haproxy not found (HAPROXY_BIN, PATH, /usr/sbin): run `make deps`")
    return found


@dataclass(frozen=True)
class CheckResult:
    """What ``haproxy -c`` said about a configuration file."""

    ok: bool
    output: str


def check(path: str | os.PathLike, *, strict: bool = True, binary: str | None = None) -> CheckResult:
    """Run ``haproxy -c -f path`` (with ``strict``, ``-dW``: warnings are errors too)."""
    cmd = [binary or haproxy_binary(), "-c", "-f", os.fspath(path)]
    if strict:
        cmd.insert(1, "-dW")
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    return CheckResult(proc.returncode == 0, (proc.stdout + proc.stderr).strip())


def server_states(stats_csv: str) -> dict[tuple[str, str], str]:
    """``{(backend, server): status}`` from the stats page's CSV (``<stats>;csv``), e.g.
    ``{("strongroom_write", "node1"): "UP", ("strongroom_read", "BACKEND"): "DOWN", ...}``;
    frontends are left out.  https://docs.haproxy.org/2.6/management.html#9.1"""
    header, *rows = [line for line in stats_csv.splitlines() if line.strip()]
    columns = header.lstrip("# ").split(",")
    states = {}
    for row in rows:
        record = dict(zip(columns, row.split(","), strict=False))  # a short row leaves fields out
        if record.get("svname") != "FRONTEND":
            states[(record["pxname"], record["svname"])] = record["status"]
    return states


def servers_up(states: Mapping[tuple[str, str], str], backend: str) -> set[str]:
    """The servers of ``backend`` that ``states`` (from ``server_states``) shows up, by HAProxy's checks."""
    return {
        server
        for (proxy, server), status in states.items()
        if proxy == backend and server != "BACKEND" and status.startswith("UP")
    }


#: The cluster ``haproxy/haproxy.cfg.example`` is rendered for.
EXAMPLE_NODES = (
    {"name": "node1", "address": "127.0.0.1:8201"},
    {"name": "node2", "address": "127.0.0.1:8202"},
    {"name": "node3", "address": "127.0.0.1:8203"},
)


def example() -> str:
    """``haproxy/haproxy.cfg.example``: three nodes on loopback, every other setting
    at its default but the failover helper's path, which is where the Ansible role installs it.
    Regenerate with ``python -m strongroom.haproxy > haproxy/haproxy.cfg.example``."""
    return render(EXAMPLE_NODES, failover_lua=FAILOVER_LUA_INSTALLED)


if __name__ == "__main__":
    print(example(), end="")
