"""Real processes for the integration and cluster tiers: Consul agents,
Strongroom nodes, ``server -dev`` twins (OpenBao, Strongroom) and HAProxy.

Everything here runs on loopback, on free ports, and is stopped by its own
process id (SIGTERM, then SIGKILL after a deadline) — never by name.  What the
classes share (start in a session of its own, log to a file, wait until ready,
stop, quote the log when a start fails) is ``base.Process``.  Finding consul,
free ports, polling, Consul's command line and HAProxy's stats come from the
product (``strongroom.devcluster.processes``, ``strongroom.haproxy``), which
its dev cluster uses too; here they raise the built-in errors tests expect.

One module per component; tests import every name from here:

* ``base``: ``free_port``, ``wait_until``, ``freeze``, ``AgentExited``, ``Process``;
* ``consul_agents``: ``ConsulAgent``, ``start_agent``, ``ConsulCluster``;
* ``nodes``: ``StrongroomServer``, ``StrongroomServerWithListener``;
* ``dev_servers``: ``OpenBaoDevServer``, ``StrongroomDevServer``;
* ``haproxy_fronts``: ``HAProxyProcess``, ``HAProxyTLSFront``;
* ``prometheus``: ``PrometheusProcess``, ``PrometheusQueryError``.
"""

from tests.helpers.procs.base import AgentExited, Process, free_port, freeze, wait_until
from tests.helpers.procs.consul_agents import ConsulAgent, ConsulCluster, consul_binary, start_agent
from tests.helpers.procs.dev_servers import OpenBaoDevServer, StrongroomDevServer, openbao_binary
from tests.helpers.procs.haproxy_fronts import HAProxyProcess, HAProxyTLSFront
from tests.helpers.procs.nodes import StrongroomServer, StrongroomServerWithListener, strongroom_binary
from tests.helpers.procs.prometheus import PrometheusProcess, PrometheusQueryError, prometheus_binary

__all__ = [
    "AgentExited",
    "ConsulAgent",
    "ConsulCluster",
    "HAProxyProcess",
    "HAProxyTLSFront",
    "OpenBaoDevServer",
    "Process",
    "PrometheusProcess",
    "PrometheusQueryError",
    "StrongroomDevServer",
    "StrongroomServer",
    "StrongroomServerWithListener",
    "consul_binary",
    "free_port",
    "freeze",
    "openbao_binary",
    "prometheus_binary",
    "start_agent",
    "strongroom_binary",
    "wait_until",
]
