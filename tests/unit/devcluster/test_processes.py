"""The pieces of ``strongroom.devcluster.processes`` that the test helpers and the
benchmarks share with the dev cluster: polling, free ports, Consul's command line."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from strongroom.devcluster import processes
from strongroom.devcluster.processes import CONSUL_AGENT_HCL, DevClusterError, Ports, WaitTimedOut


def test_wait_returns_the_first_truthy_value_and_takes_errors_as_not_yet():
    answers = iter([ConnectionRefusedError("starting"), None, 0, "ready"])

    def predicate():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert processes.wait(predicate, time.monotonic() + 5, "the server", interval=0) == "ready"


def test_wait_names_what_it_waited_for_and_the_last_error_and_outcome():
    outcomes = iter([OSError("refused"), False])
    with pytest.raises(WaitTimedOut) as caught:
        processes.wait(
            lambda: _raise_or_return(next(outcomes, False)), time.monotonic() + 0.05, "consul", interval=0.01
        )
    assert str(caught.value) == "timed out waiting for consul (last error: OSError('refused'))"
    assert isinstance(caught.value, DevClusterError)
    assert repr(caught.value.last_error) == "OSError('refused')" and caught.value.last is False


def test_wait_runs_the_predicate_once_even_past_the_deadline():
    assert processes.wait(lambda: 1, time.monotonic() - 1, "x") == 1


def test_wait_lets_fatal_errors_through_at_once():
    class Exited(Exception):
        pass

    calls = []

    def predicate():
        calls.append(1)
        raise Exited("gone")

    with pytest.raises(Exited):
        processes.wait(predicate, time.monotonic() + 5, "x", interval=0, fatal=(Exited,))
    assert len(calls) == 1
    with pytest.raises(DevClusterError, match="boom"):  # the default: the dev cluster's own errors
        processes.wait(lambda: _raise_or_return(DevClusterError("boom")), time.monotonic() + 5, "x")


def test_ports_are_free_for_tcp_and_udp_and_never_given_twice():
    ports = Ports()
    taken = [ports.take() for _ in range(30)]
    assert len(set(taken)) == 30
    for port in taken[:3]:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        ):
            tcp.bind(("127.0.0.1", port))
            udp.bind(("127.0.0.1", port))


def test_process_wide_free_ports_are_never_given_twice():
    assert len({processes.free_port() for _ in range(30)}) == 30


def test_a_base_port_in_use_is_an_error_naming_it():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        with pytest.raises(DevClusterError, match=f"port {port} on 127.0.0.1 is in use"):
            Ports(port).take()


def test_consul_agent_command_alone_bootstraps_itself():
    ports = {"http": 1, "serf_lan": 2, "serf_wan": 3, "server": 4}
    cmd = processes.consul_agent_command("consul", "n1", Path("/d"), ports, extra_hcl="acl {}\n")
    assert cmd[:3] == ["consul", "agent", "-server"]
    assert {
        "-node=n1",
        "-http-port=1",
        "-serf-lan-port=2",
        "-serf-wan-port=3",
        "-server-port=4",
        "-dns-port=-1",
        "-data-dir=/d",
        f"-hcl={CONSUL_AGENT_HCL}acl {{}}\n",
        "-bootstrap",
    } <= set(cmd)
    assert not [arg for arg in cmd if arg.startswith(("-retry", "-bootstrap-expect", "-https-port"))]


def test_consul_agent_command_in_a_cluster_joins_its_peers_quickly():
    ports = {"http": 1, "serf_lan": 2, "serf_wan": 3, "server": 4, "https": 5}
    cmd = processes.consul_agent_command(
        "consul", "n1", Path("/d"), ports, bootstrap_expect=3, retry_join=["127.0.0.1:12", "127.0.0.1:22"]
    )
    assert cmd[-5:] == [
        "-https-port=5",
        "-bootstrap-expect=3",
        "-retry-interval=200ms",
        "-retry-join=127.0.0.1:12",
        "-retry-join=127.0.0.1:22",
    ]


def _raise_or_return(outcome):
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
