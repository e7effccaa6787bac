"""A Strongroom cluster on podman systemd hosts, provisioned by ``ansible/``:
what the deploy tier (tests/deploy) and ``make cluster`` share.

The hosts and their groups are those of ``ansible/inventories/containers/hosts.yml``
(one source of truth); the playbooks run against that inventory with a
secrets directory of the run's own (the Consul gossip key and tokens, the
operator's ``init.json``, the run's SSH key) and the wheelhouse of
``scripts/build-wheelhouse.sh``.  Ansible reaches the hosts over SSH, as root,
with the run's ed25519 key, pipelining and a ControlPersist master per host:
``ssh-hosts.yml`` in the run's directory, a second inventory source generated
at ``up``, gives each host of hosts.yml its address and the key and SSH
options (host variables; no groups).  ``state.json`` in the run's directory
records the container ids and the network, which is all ``down`` needs.

    python -m tests.helpers.container_cluster up [DIR] [--tls]   (make cluster; TLS=1 adds --tls)
    python -m tests.helpers.container_cluster down [DIR]   (make cluster-down)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.helpers.pki import CertificateAuthority
from tests.helpers.procs.podman_hosts import PodmanHosts, host_image

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
INVENTORY = ANSIBLE / "inventories" / "containers"
VENV_BIN = REPO / ".venv" / "bin"
DEFAULT_DIR = REPO / "run" / "containers"

RECAP_LINE = re.compile(r"^(\S+)\s*:\s*((?:\w+=\d+\s*)+)$")


def inventory_groups(inventory: Path = INVENTORY) -> dict[str, list[str]]:
    """Group name -> host names, as the containers inventory's hosts.yml lists them."""
    tree = yaml.safe_load((inventory / "hosts.yml").read_text())
    children = tree["all"]["children"]
    return {group: list((body or {}).get("hosts") or {}) for group, body in children.items()}


@dataclass
class PlaybookRun:
    """One finished ``ansible-playbook`` run: its exit status, output, wall time,
    and the PLAY RECAP as host -> {"ok": n, "changed": n, ...}."""

    playbook: str
    returncode: int
    output: str
    seconds: float

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        recap: dict[str, dict[str, int]] = {}
        lines = self.output.split("PLAY RECAP")[-1].splitlines() if "PLAY RECAP" in self.output else []
        for line in lines:
            match = RECAP_LINE.match(line.strip())
            if match:
                counts = dict(pair.split("=") for pair in match.group(2).split())
                recap[match.group(1)] = {key: int(value) for key, value in counts.items()}
        return recap

    def changed(self) -> dict[str, int]:
        """Hosts with a non-zero ``changed`` count."""
        return {host: c["changed"] for host, c in self.recap.items() if c.get("changed")}

    def check(self) -> PlaybookRun:
        """Raise AssertionError quoting the output's tail unless the run succeeded
        on every host."""
        bad = {h: c for h, c in self.recap.items() if c.get("failed") or c.get("unreachable")}
        if self.returncode != 0 or bad or not self.recap:
            tail = "\n".join(self.output.splitlines()[-80:])
            raise AssertionError(f"{self.playbook} exited {self.returncode}, recap {self.recap}:\n{tail}")
        return self


class ContainerCluster:
    """The hosts of the containers inventory as podman containers, and the
    playbooks run against them.  ``directory`` holds this run's state, secrets
    and playbook logs; ``prefix`` names its containers and network."""

    def __init__(
        self,
        directory: Path,
        prefix: str | None = None,
        wheelhouse: Path | None = None,
        secrets: Path | None = None,
        tls: bool = False,
    ):
        # Absolute: Ansible and ssh run in ansible/, and ssh-hosts.yml names paths in here.
        self.directory = directory.resolve()
        self.tls = tls
        self.groups = inventory_groups()
        names = list(dict.fromkeys(name for hosts in self.groups.values() for name in hosts))
        self.hosts = PodmanHosts(image="", names=names, **({"prefix": prefix} if prefix else {}))
        self.wheelhouse = wheelhouse
        self.secrets = (secrets or self.directory / "secrets").resolve()

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    @property
    def ssh_key(self) -> Path:
        """The run's private SSH key (the public one beside it, ``.pub``): root on every host."""
        return self.secrets / "ssh_ed25519"

    @property
    def ssh_inventory(self) -> Path:
        """The generated inventory source: each host's address, the key, the SSH options."""
        return self.directory / "ssh-hosts.yml"

    @property
    def control_dir(self) -> Path:
        """Where the ControlPersist masters' sockets live: the run's own, so
        a later run that meets the same addresses never reuses a master of
        this one.  A Unix socket path has at most 107 bytes: ``<dir>/%C``
        adds 41, so a long run directory gives way to one under /tmp."""
        here = self.directory / "cp"
        if len(str(here)) <= 60:
            return here
        return Path(tempfile.gettempdir()) / f"{self.hosts.prefix}cp"

    def ssh_options(self) -> list[str]:
        """``ssh`` options that reach the hosts as Ansible does (``root@<address>``)."""
        return [
            *("-o", "ControlMaster=auto", "-o", "ControlPersist=120s", "-o", f"ControlPath={self.control_dir}/%C"),
            *("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"),
            *("-o", "IdentitiesOnly=yes", "-i", str(self.ssh_key)),
        ]

    def _make_ssh_key(self) -> None:
        """A fresh ed25519 key pair for this run, in its secrets directory."""
        self.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in (self.ssh_key, self.ssh_key.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"strongroom-{self.hosts.prefix}"]
        subprocess.run([*argv, "-f", str(self.ssh_key)], check=True, capture_output=True, timeout=60, close_fds=True)
        self.hosts.authorized_keys = self.ssh_key.with_suffix(".pub")

    def _write_ssh_inventory(self) -> None:
        """``ssh-hosts.yml``: host variables only, so hosts.yml stays the one
        source of the groups; host variables outrank the inventory's group_vars."""
        self.control_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        ssh_args = " ".join(self.ssh_options()[:-2])  # the key is ansible_ssh_private_key_file
        hostvars = {
            name: {
                "ansible_host": host.address,
                "ansible_ssh_private_key_file": str(self.ssh_key),
                "ansible_ssh_args": ssh_args,
            }
            for name, host in self.hosts.hosts.items()
        }
        header = "# Generated by tests/helpers/container_cluster.py for this run's hosts: use with\n"
        header += f"# ansible-playbook -i {INVENTORY} -i {self.ssh_inventory} ...\n"
        self.ssh_inventory.write_text(header + yaml.safe_dump({"all": {"hosts": hostvars}}, sort_keys=False))

    def drop_ssh_master(self, host: str) -> None:
        """End the ControlPersist master of ``host`` (if any): after a host was
        killed, the next connection must not go through a master whose TCP
        connection died with it."""
        argv = ["ssh", *self.ssh_options(), "-O", "exit", f"root@{self.address(host)}"]
        subprocess.run(argv, capture_output=True, timeout=30, stdin=subprocess.DEVNULL, close_fds=True)

    def up(self) -> ContainerCluster:
        """Build (or reuse) the host image and the wheelhouse, make the run's
        SSH key, start the hosts, record them in state.json.  Removes what it
        started if a step fails."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hosts.image = host_image()
        if self.wheelhouse is None:
            self.wheelhouse = build_wheelhouse()
        self._make_ssh_key()
        self.hosts.start()
        try:
            self._write_ssh_inventory()
            if self.tls:
                self._issue_certificates()
            self._save()
        except BaseException:
            self.hosts.stop()
            raise
        return self

    def _save(self) -> None:
        state = {
            "hosts": self.hosts.state(),
            "wheelhouse": str(self.wheelhouse),
            "secrets": str(self.secrets),
            "tls": self.tls,
        }
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> ContainerCluster:
        """The cluster that ``up`` recorded in ``directory``."""
        state = json.loads((directory / "state.json").read_text())
        cluster = cls(
            directory,
            prefix=state["hosts"]["prefix"],
            wheelhouse=Path(state["wheelhouse"]),
            secrets=Path(state["secrets"]),
            tls=state.get("tls", False),
        )
        cluster.hosts = PodmanHosts.from_state(state["hosts"])
        return cluster

    def down(self) -> None:
        """End the SSH masters, remove the containers (by id) and the network;
        then the run's state and secrets, which belong to these containers only."""
        for host in self.hosts.hosts:
            self.drop_ssh_master(host)
        self.hosts.stop()
        shutil.rmtree(self.control_dir, ignore_errors=True)
        self.ssh_inventory.unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)
        shutil.rmtree(self.secrets, ignore_errors=True)

    def address(self, host: str) -> str:
        """The host's IPv4 address on the cluster's network (reachable from here)."""
        return self.hosts.hosts[host].address

    @property
    def tls_dir(self) -> Path:
        """The run's CA and certificates (on this machine, the controller)."""
        return self.directory / "tls"

    @property
    def ca_file(self) -> Path:
        """What a client of the nodes, HAProxy's front door included, verifies with (TLS on)."""
        return self.tls_dir / "ca.pem"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def verify(self) -> bool | str:
        """``requests``' ``verify`` for the nodes and the front door."""
        return str(self.ca_file) if self.tls else True

    def _issue_certificates(self) -> None:
        """One CA for the run; a certificate per node for its listener (its
        inventory name, container name and address), per Consul server for RPC
        (``server.<dc>.consul``, as ``verify_server_hostname`` requires) and
        one for HAProxy's front door."""
        ca = CertificateAuthority(self.tls_dir)
        local = ["localhost", "127.0.0.1"]
        for host in self.groups["strongroom_nodes"]:
            names = [host, self.hosts.hosts[host].container, self.address(host)]
            ca.issue(f"node-{host}", names + local)
        for host in self.groups["consul_servers"]:
            ca.issue(f"consul-{host}", ["server.dc1.consul", host, self.address(host)] + local)
        for host in self.groups["loadbalancers"]:
            ca.issue_bundle(f"front-{host}", [host, self.address(host)] + local)

    def extra_vars(self) -> dict[str, object]:
        """What differs from run to run; the rest is the inventory's group_vars."""
        variables: dict[str, object] = {
            "strongroom_secrets_dir": str(self.secrets),
            "strongroom_wheelhouse": str(self.wheelhouse),
        }
        if self.tls:
            # TLS on between clients, HAProxy and the nodes, Prometheus and the
            # nodes, and between Consul's agents; paths on the controller.
            tls = str(self.tls_dir)
            variables |= {
                "strongroom_tls": True,
                "strongroom_tls_ca_file": f"{tls}/ca.pem",
                "strongroom_tls_cert_file": tls + "/node-{{ inventory_hostname }}.pem",
                "strongroom_tls_key_file": tls + "/node-{{ inventory_hostname }}-key.pem",
                "haproxy_tls_cert": tls + "/front-{{ inventory_hostname }}-bundle.pem",
                "consul_tls": True,
                "consul_tls_ca_file": f"{tls}/ca.pem",
                "consul_tls_cert_file": tls + "/consul-{{ inventory_hostname }}.pem",
                "consul_tls_key_file": tls + "/consul-{{ inventory_hostname }}-key.pem",
            }
        return variables

    def playbook(
        self, name: str, *args: str, extra: dict[str, object] | None = None, timeout: float = 900
    ) -> PlaybookRun:
        """Run ``ansible/<name>`` against the hosts; the output goes to
        ``<directory>/<name>.<n>.log`` as it runs."""
        variables = {**self.extra_vars(), **(extra or {})}
        argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY), "-i", str(self.ssh_inventory)]
        argv += ["-e", json.dumps(variables), *args]
        argv.append(str(ANSIBLE / name))
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            # Each task's duration in the output (and the slowest at the end).
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        n = len(list(self.directory.glob(f"{name}.*.log"))) + 1
        log_path = self.directory / f"{name}.{n}.log"
        started = time.monotonic()
        # Written as it runs, so a slow run can be followed with tail -f.
        with open(log_path, "w") as log:
            done = subprocess.run(
                argv,
                cwd=ANSIBLE,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                close_fds=True,
            )
        run = PlaybookRun(name, done.returncode, log_path.read_text(), time.monotonic() - started)
        return run

    def journal(self, host: str, *units: str, lines: int = 40) -> str:
        """The last ``lines`` journal lines of ``units`` on ``host`` (for failure reports)."""
        argv = ["journalctl", "--no-pager", "-n", str(lines)]
        for unit in units:
            argv += ["-u", unit]
        done = self.hosts.exec(host, *argv, check=False)
        return done.stdout + done.stderr

    def summary(self) -> str:
        """How to reach the cluster, for a person."""
        lb = self.groups["loadbalancers"][0]
        monitor = self.groups["monitoring"][0]
        nodes = self.groups["strongroom_nodes"]
        lines = [
            f"Strongroom cluster on podman hosts ({', '.join(self.hosts.hosts)}), network {self.hosts.network}",
            f"  HAProxy (the front door):  export VAULT_ADDR={self.scheme}://{self.address(lb)}:8200",
            f"  HAProxy stats:             http://{self.address(lb)}:8404/stats",
            f"  a node directly:           {self.scheme}://{self.address(nodes[0])}:8200  ({nodes[0]})",
            f"  Prometheus:                http://{self.address(monitor)}:9090",
            *([f"  the CA (TLS on):           export VAULT_CACERT={self.ca_file}"] if self.tls else []),
            f"  Consul HTTP (ACLs on):     http://{self.address(nodes[0])}:8500",
            f"  unseal keys + root token:  {self.secrets / 'init.json'} (mode 0600)",
            f"  Consul tokens:             {self.secrets / 'consul.json'}",
            f"  a shell on a host:         ssh {' '.join(self.ssh_options())} root@{self.address(nodes[0])}",
            f"                             (or podman exec -it {self.hosts.hosts[nodes[0]].container} bash)",
            "  a playbook by hand:        cd ansible && ../.venv/bin/ansible-playbook -i inventories/containers "
            f"-i {self.ssh_inventory} rolling-restart.yml",
            "  remove it all:             make cluster-down",
        ]
        return "\n".join(lines)


def build_wheelhouse() -> Path:
    """The wheelhouse directory, built or refreshed by scripts/build-wheelhouse.sh."""
    script = REPO / "scripts" / "build-wheelhouse.sh"
    done = subprocess.run([str(script)], capture_output=True, text=True, timeout=900, close_fds=True)
    if done.returncode != 0:
        raise RuntimeError(f"{script} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    """``up`` (start, provision, initialise, print how to reach it) or ``down``."""
    tls = "--tls" in argv
    argv = [a for a in argv if a != "--tls"]
    if len(argv) < 1 or argv[0] not in ("up", "down"):
        print("usage: python -m tests.helpers.container_cluster up [DIR] [--tls] | down [DIR]", file=sys.stderr)
        return 2
    directory = Path(argv[1]) if len(argv) > 1 else DEFAULT_DIR
    if argv[0] == "down":
        if not (directory / "state.json").exists():
            print(f"no container cluster recorded in {directory}")
            return 0
        ContainerCluster.load(directory).down()
        print(f"container cluster of {directory} removed")
        return 0
    if (directory / "state.json").exists():
        cluster = ContainerCluster.load(directory)
        if not cluster.ssh_inventory.exists():
            print(f"the cluster recorded in {directory} predates SSH access: make cluster-down first", file=sys.stderr)
            return 1
        print(f"reusing the container cluster recorded in {directory} (make cluster-down removes it)")
    else:
        # The inventory's own defaults (prefix, secrets in inventories/containers/.secrets,
        # the default wheelhouse), so playbooks run by hand reach the same cluster.
        cluster = ContainerCluster(directory, prefix="strongroom-", secrets=INVENTORY / ".secrets", tls=tls).up()
    for playbook in ("site.yml", "operator-init.yml"):
        print(f"== ansible-playbook {playbook}", flush=True)
        run = cluster.playbook(playbook)
        if run.returncode != 0:
            print("\n".join(run.output.splitlines()[-60:]), file=sys.stderr)
            print(f"{playbook} failed after {run.seconds:.0f} s; full output in {directory}", file=sys.stderr)
            return 1
        print("\n".join(f"  {host}: {counts}" for host, counts in run.recap.items()))
        print(f"{playbook}: {run.seconds:.0f} s")
    print(cluster.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
