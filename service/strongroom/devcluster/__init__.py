"""``strongroom dev-cluster``: Consul, N nodes and HAProxy on loopback, ready to use.

A development and test cluster, never a production one: every process runs on
127.0.0.1, the unseal keys and the root token are written to
``DIR/cluster.json`` (mode 0600) and Consul's data is wiped at every start.

``start(options)`` starts Consul (one server, or several that bootstrap one
raft cluster), the nodes (``strongroom server -config DIR/nodeI.hcl``, storage
"consul" under one shared ``strongroom/`` prefix; node I talks to Consul server
I mod M) and HAProxy (``DIR/haproxy.cfg`` rendered by ``strongroom.haproxy``);
then it initialises the cluster through node1, mounts KV v2 at ``secret/``
(as ``server -dev`` does), unseals every node and waits until HAProxy routes to
them.  Every process runs in a session of its own with its output in
``DIR/<name>.log`` and is stopped only by its own pid, after checking that the
pid still runs a command line naming DIR (pids get reused).

With ``--base-port P`` the ports are P (HAProxy), P+1 (stats and /metrics),
P+2.. (one per node), then four per Consul server; otherwise free ports.

The layers run one way: ``command`` (``run``, ``stop_directory``) →
``cluster`` (``DevCluster``, ``Options``, ``cluster.json``) → ``processes``
(binaries, ports, waiting, stopping by pid).
"""

from strongroom.devcluster.cluster import STATE_FILE, DevCluster, Options
from strongroom.devcluster.command import run, stop_directory
from strongroom.devcluster.processes import (
    Child,
    DevClusterError,
    consul_binary,
    pid_alive,
    stop_children,
    strongroom_command,
)

__all__ = [
    "STATE_FILE",
    "Child",
    "DevCluster",
    "DevClusterError",
    "Options",
    "consul_binary",
    "pid_alive",
    "run",
    "stop_children",
    "stop_directory",
    "strongroom_command",
]
