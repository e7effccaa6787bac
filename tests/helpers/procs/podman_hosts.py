"""systemd hosts as podman containers, for the deploy tier and ``make cluster``.

Each host boots ``/sbin/init`` from the image of ``scripts/build-host-image.sh``
on a podman network made for this group of hosts alone, with what DESIGN.md
("systemd hosts in podman") found these machines need: ``--runtime runc``,
``--systemd=always``, ulimits of 20000, ``SYS_ADMIN`` for units with systemd
sandboxing, ``IPC_LOCK`` for ``AmbientCapabilities``, and a fixed MAC address
and IPv4 address per host, so a host cut off with ``podman network disconnect``
comes back on the same address.  Every host knows the others by name
(``--add-host``).  Ansible reaches them as it reaches real machines: over SSH,
as root, by key, at each host's fixed address (the image runs sshd, root login
by key only; ``authorized_keys``, the run's own public key, is bind-mounted
read-only at ``/root/.ssh/authorized_keys``).  The controller's own checks
(``exec``, ``kill``, ``disconnect``) go through podman.

Invariants: containers and the network are removed by their own id and name
(``stop()``, idempotent, also after a failed start); nothing is ever removed by
a name pattern.  Podman's helpers inherit open descriptors, so podman runs with
``close_fds`` and no lock file is held across it.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BUILD_IMAGE = REPO / "scripts" / "build-host-image.sh"

# systemd caps, as DESIGN.md records: sandboxed units need SYS_ADMIN (226/NAMESPACE
# otherwise), AmbientCapabilities=CAP_IPC_LOCK is dropped silently without IPC_LOCK.
CAPABILITIES = ("SYS_ADMIN", "IPC_LOCK")
ULIMITS = ("nofile=20000:20000", "nproc=20000:20000")


class PodmanError(RuntimeError):
    """A podman command failed; the message quotes its command line and stderr."""


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS`` and return the completed process (stdout, stderr as text)."""
    done = subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        close_fds=True,
    )
    if check and done.returncode != 0:
        raise PodmanError(f"podman {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def host_image() -> str:
    """The tag of the bookworm host image, building it first when it is missing
    (about 80 s the first time, then cached outside the repository)."""
    done = subprocess.run([str(BUILD_IMAGE)], capture_output=True, text=True, timeout=900, close_fds=True)
    if done.returncode != 0:
        raise PodmanError(f"{BUILD_IMAGE} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


@dataclass
class PodmanHost:
    """One running host: ``name`` is its hostname and inventory name,
    ``container`` the podman container's name (what Ansible connects to),
    ``container_id`` what it is stopped by."""

    name: str
    container: str
    address: str
    mac: str
    container_id: str = ""


@dataclass
class PodmanHosts:
    """Hosts ``names`` booted from ``image`` on a network of their own.

    ``prefix`` starts every container name and the network's name; by default
    a fresh random one, so concurrent runs never meet.  Use as a context
    manager, or call ``start()`` and ``stop()``.
    """

    image: str
    names: Sequence[str]
    prefix: str = field(default_factory=lambda: f"sr-{uuid.uuid4().hex[:6]}-")
    boot_timeout: float = 60.0
    authorized_keys: Path | None = None
    hosts: dict[str, PodmanHost] = field(default_factory=dict)
    network: str = ""
    network_created: bool = False

    def __post_init__(self) -> None:
        self.network = self.network or f"{self.prefix}net"

    def start(self) -> PodmanHosts:
        """Create the network, start every host, wait until systemd in each is
        up (``running`` or ``degraded``).  On any failure, removes what it made."""
        try:
            self._create_network()
            for host in self.hosts.values():
                self._run(host)
            for host in self.hosts.values():
                self.wait_booted(host)
        except BaseException:
            self.stop()
            raise
        return self

    def _create_network(self) -> None:
        podman("network", "create", self.network)
        self.network_created = True
        info = json.loads(podman("network", "inspect", self.network).stdout)[0]
        subnet = ipaddress.ip_network(info["subnets"][0]["subnet"])
        mac_tag = uuid.uuid4().bytes[:2]
        for i, name in enumerate(self.names):
            # Locally administered, unicast, unique per run and per host.
            mac = ":".join(f"{b:02x}" for b in (0x02, 0x53, 0x52, mac_tag[0], mac_tag[1], i + 1))
            address = str(subnet.network_address + 11 + i)
            self.hosts[name] = PodmanHost(name=name, container=f"{self.prefix}{name}", address=address, mac=mac)

    def _run(self, host: PodmanHost) -> None:
        argv = ["run", "--detach", "--runtime", "runc", "--systemd", "always"]
        argv += ["--name", host.container, "--hostname", host.name]
        argv += ["--network", self.network, "--ip", host.address, "--mac-address", host.mac]
        for other in self.hosts.values():
            if other is not host:
                argv += ["--add-host", f"{other.name}:{other.address}"]
        for cap in CAPABILITIES:
            argv += ["--cap-add", cap]
        for limit in ULIMITS:
            argv += ["--ulimit", limit]
        if self.authorized_keys is not None:
            # Read-only and in place from the first boot: nothing on the host
            # rewrites it, and a killed host started again keeps it.
            argv += ["--volume", f"{self.authorized_keys}:/root/.ssh/authorized_keys:ro"]
        argv += [self.image, "/sbin/init"]
        host.container_id = podman(*argv).stdout.strip()

    def wait_booted(self, host: PodmanHost) -> str:
        """Wait until systemd in ``host`` has finished booting; return its state.
        ``degraded`` counts as booted (a unit failed, the host is up): say which."""
        deadline = time.monotonic() + self.boot_timeout
        while True:
            left = max(1, int(deadline - time.monotonic()))
            wait = ["timeout", str(left), "systemctl", "is-system-running", "--wait"]
            done = podman("exec", host.container_id, *wait, timeout=left + 30, check=False)
            state = done.stdout.strip()
            # Just after ``podman start`` systemd (PID 1) may not have opened its
            # private bus yet: systemctl then fails at once with no state. Ask
            # again until the boot deadline.
            if state or "Failed to connect to bus" not in done.stderr or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if state not in ("running", "degraded"):
            failed = podman("exec", host.container_id, "systemctl", "--failed", "--no-legend", check=False).stdout
            raise PodmanError(f"{host.name}: systemd is {state!r} ({done.stderr.strip()}); failed units: {failed}")
        return state

    def exec(self, host: str, *argv: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``host`` as root."""
        return podman("exec", self.hosts[host].container_id, *argv, timeout=timeout, check=check)

    def kill(self, host: str) -> None:
        """SIGKILL every process of ``host`` at once, as a power cut would."""
        podman("kill", "--signal", "KILL", self.hosts[host].container_id)

    def start_again(self, host: str) -> str:
        """Boot a stopped (killed) ``host`` again, same container, same address;
        wait for systemd as ``start()`` does."""
        podman("start", self.hosts[host].container_id)
        return self.wait_booted(self.hosts[host])

    def disconnect(self, host: str) -> None:
        """Cut ``host`` off the network: its processes run on, unreachable."""
        podman("network", "disconnect", self.network, self.hosts[host].container_id)

    def connect(self, host: str) -> None:
        """Put ``host`` back on the network with its own address and MAC."""
        h = self.hosts[host]
        podman("network", "connect", "--ip", h.address, "--mac-address", h.mac, self.network, h.container_id)

    def running(self, host: str) -> bool:
        """True while ``host``'s container runs."""
        done = podman("inspect", "--format", "{{.State.Running}}", self.hosts[host].container_id, check=False)
        return done.stdout.strip() == "true"

    def inventory(self, groups: dict[str, Iterable[str]], variables: dict[str, object] | None = None) -> dict:
        """An Ansible YAML inventory (as a dict) of these hosts in ``groups``,
        each reached over SSH as root at its address (the connection's other
        settings, the key among them, go in ``variables``)."""
        hostvars = {
            h.name: {"ansible_host": h.address, "ansible_connection": "ssh", "ansible_user": "root"}
            for h in self.hosts.values()
        }
        children = {group: {"hosts": {name: {} for name in names}} for group, names in groups.items()}
        return {"all": {"hosts": hostvars, "vars": dict(variables or {}), "children": children}}

    def state(self) -> dict:
        """What ``from_state`` needs to find these hosts again (``make cluster-down``)."""
        return {
            "image": self.image,
            "prefix": self.prefix,
            "network": self.network if self.network_created else "",
            "authorized_keys": str(self.authorized_keys or ""),
            "hosts": [vars(h) for h in self.hosts.values()],
        }

    @classmethod
    def from_state(cls, state: dict) -> PodmanHosts:
        """The hosts a ``state()`` describes, ready to ``stop()``."""
        hosts = cls(image=state["image"], names=[h["name"] for h in state["hosts"]], prefix=state["prefix"])
        hosts.hosts = {h["name"]: PodmanHost(**h) for h in state["hosts"]}
        hosts.network = state["network"] or hosts.network
        hosts.network_created = bool(state["network"])
        hosts.authorized_keys = Path(state["authorized_keys"]) if state.get("authorized_keys") else None
        return hosts

    def stop(self) -> None:
        """Remove every container by its id, then the network by its name.
        Idempotent; a container that is already gone is not an error."""
        errors = []
        for host in self.hosts.values():
            if host.container_id:
                done = podman("rm", "--force", "--time", "0", host.container_id, check=False, timeout=120)
                if done.returncode != 0 and "no such container" not in done.stderr.lower():
                    errors.append(done.stderr.strip())
                host.container_id = ""
        if self.network_created:
            done = podman("network", "rm", self.network, check=False)
            if done.returncode != 0 and "unable to find network" not in done.stderr.lower():
                errors.append(done.stderr.strip())
            self.network_created = False
        if errors:
            raise PodmanError("; ".join(errors))

    def __enter__(self) -> PodmanHosts:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
