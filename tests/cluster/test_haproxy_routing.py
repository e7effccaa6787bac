"""The rendered configuration, run by the real HAProxy, in front of stand-in nodes.

A ``StandInNode`` answers ``/v1/sys/health`` exactly as Vault documents it for a
role (active, performance standby, standby, sealed) and echoes who served each
request, so these tests pin down what the configuration does — which node each
backend admits, where each method goes, what is retried — independently of the
HA layer.  The same routing through real nodes is proven in the HA tests.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from strongroom import haproxy
from tests.cluster.certs import self_signed_pem
from tests.helpers.procs import HAProxyProcess, wait_until

WRITE, READ = "strongroom_write", "strongroom_read"
HEALTH = {"active": 200, "performance_standby": 473, "standby": 429, "sealed": 503}


class StandInServer(ThreadingHTTPServer):
    """The stand-ins' HTTP server.  HAProxy's health checks hang up with a
    reset once they have the status line (and a retried request may too): a
    client that went away is no error of the stand-in, so it prints nothing;
    any other error in a handler still prints its traceback."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class StandInNode:
    """An HTTP server on 127.0.0.1 playing one node: health by ``role``, any other
    request answered 200 with ``X-Strongroom-Node`` (503 when ``sealed``) and recorded in ``seen``;
    with ``drop`` set, non-health requests get their connection closed unanswered."""

    def __init__(self, name: str, role: str):
        self.name, self.role, self.drop = name, role, False
        self.seen: list[dict] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_request(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                if url.path == haproxy.WRITE_CHECK_PATH:
                    query = parse_qs(url.query)
                    code = HEALTH[node.role]
                    if code == 473 and query.get("perfstandbyok") == ["true"]:
                        code = 200
                    return self.reply(code, {"role": node.role})
                node.seen.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "body": body,
                        "xff": self.headers.get("X-Forwarded-For"),
                        "internal": {
                            name: self.headers.get_all(name)
                            for name in haproxy.INTERNAL_REQUEST_HEADERS
                            if self.headers.get_all(name)
                        },
                    }
                )
                if node.role == "sealed":
                    return self.reply(503, {"errors": ["Vault is sealed"]})
                if node.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                return self.reply(200, {"node": node.name, "method": self.command})

            def reply(self, code: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Strongroom-Node", node.name)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_LIST = do_PUT = do_POST = do_DELETE = do_PATCH = handle_request

        self.server = StandInServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening: new connections are refused."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_ins():
    nodes = [
        StandInNode("node1", "active"),
        StandInNode("node2", "performance_standby"),
        StandInNode("node3", "standby"),
    ]
    yield {n.name: n for n in nodes}
    for node in nodes:
        node.close()


@pytest.fixture
def front(stand_ins):
    with HAProxyProcess([{"name": n.name, "address": n.address} for n in stand_ins.values()]) as proxy:
        proxy.wait_servers_up(WRITE, {"node1"})
        proxy.wait_servers_up(READ, {"node1", "node2"})
        yield proxy


def send(proxy: HAProxyProcess, method: str, path: str = "/v1/secret/data/x", **kwargs) -> requests.Response:
    return requests.request(method, proxy.url + path, timeout=10, **kwargs)


def test_write_backend_admits_the_active_node_only_and_read_backend_the_performance_standbys_too(front):
    states = front.server_states()
    assert {k: v for k, v in states.items() if k[1] != "BACKEND"} == {
        (WRITE, "node1"): "UP",
        (WRITE, "node2"): "DOWN",
        (WRITE, "node3"): "DOWN",
        (READ, "node1"): "UP",
        (READ, "node2"): "UP",
        (READ, "node3"): "DOWN",
    }


@pytest.mark.parametrize("method", ["GET", "HEAD", "LIST"])
def test_reads_go_to_the_read_backend_and_spread_over_it(front, method):
    served = set()
    for _ in range(12):
        response = send(front, method)
        assert response.status_code == 200
        assert response.headers["X-Strongroom-Route"].startswith(f"{READ}/")
        served.add(response.headers["X-Strongroom-Node"])
    assert served == {"node1", "node2"}


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH"])
def test_everything_else_goes_to_the_active_node(front, stand_ins, method):
    for _ in range(6):
        response = send(front, method, data=b'{"data": {"a": "b"}}')
        assert response.status_code == 200
        assert response.headers["X-Strongroom-Route"] == f"{WRITE}/node1"
    seen = stand_ins["node1"].seen[-1]
    assert seen["method"] == method and seen["body"] == b'{"data": {"a": "b"}}'
    assert seen["xff"] == "127.0.0.1"  # option forwardfor


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_a_clients_internal_headers_never_reach_a_node(front, stand_ins, method):
    """X-Strongroom-Forwarded is for nodes only (api/forward.py): HAProxy drops
    a client's, however it is spelled or repeated."""
    for spelling in ("X-Strongroom-Forwarded", "x-strongroom-forwarded", "X-STRONGROOM-FORWARDED"):
        response = requests.request(
            method, front.url + "/v1/secret/data/x", timeout=10, headers={spelling: "evil", "X-Other": "kept"}
        )
        assert response.status_code == 200
    seen = [entry for node in stand_ins.values() for entry in node.seen if entry["method"] == method]
    assert len(seen) == 3
    assert [entry["internal"] for entry in seen] == [{}, {}, {}]


def test_x_vault_forward_active_node_sends_a_read_to_the_active_node(front):
    for _ in range(6):
        response = send(front, "GET", headers={"X-Vault-Forward": "active-node"})
        assert response.headers["X-Strongroom-Route"] == f"{WRITE}/node1"


def test_a_new_active_node_takes_the_writes_within_about_a_second(front, stand_ins):
    stand_ins["node1"].role = "standby"
    stand_ins["node2"].role = "active"
    started = time.monotonic()
    front.wait_servers_up(WRITE, {"node2"}, timeout=5)
    took = time.monotonic() - started
    # inter 500ms, fall 2 (fastinter 250ms), rise 1 (downinter 250ms)
    assert took < 2.0, f"write backend took {took:.2f}s to follow the new active node"
    assert send(front, "PUT").headers["X-Strongroom-Route"] == f"{WRITE}/node2"
    front.wait_servers_up(READ, {"node2"}, timeout=5)


def test_a_sealed_node_leaves_both_backends(front, stand_ins):
    stand_ins["node2"].role = "sealed"
    front.wait_servers_up(READ, {"node1"}, timeout=5)
    assert front.servers_up(WRITE) == {"node1"}


def test_reads_are_retried_on_another_node_when_one_dies(front, stand_ins):
    stand_ins["node2"].close()  # refused connections before any check notices
    for _ in range(10):
        response = send(front, "GET")
        assert response.status_code == 200, response.text
        assert response.headers["X-Strongroom-Node"] == "node1"


def test_a_read_that_got_no_answer_is_retried_elsewhere(front, stand_ins):
    stand_ins["node2"].drop = True
    for _ in range(8):
        response = send(front, "GET")
        assert response.status_code == 200
        assert response.headers["X-Strongroom-Node"] == "node1"
    assert stand_ins["node2"].seen, "node2 was never tried: the test proved nothing"


def test_a_write_that_got_no_answer_is_not_sent_twice(front, stand_ins):
    stand_ins["node1"].drop = True
    before = len(stand_ins["node1"].seen)
    response = send(front, "POST", data=b"{}")
    assert response.status_code == 502
    assert len(stand_ins["node1"].seen) == before + 1


def test_stats_page_and_prometheus_exporter(front):
    page = requests.get(front.stats_url, timeout=5)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    metrics = requests.get(front.metrics_url, timeout=5)
    assert metrics.status_code == 200
    assert f'haproxy_server_status{{proxy="{WRITE}",server="node1",state="UP"}} 1' in metrics.text
    assert f'haproxy_backend_active_servers{{proxy="{READ}"}} 2' in metrics.text


def test_tls_front_door(stand_ins, tmp_path):
    pem = self_signed_pem(tmp_path)
    nodes = [{"name": n.name, "address": n.address} for n in stand_ins.values()]
    with HAProxyProcess(nodes, tls_cert=str(pem)) as proxy:
        assert proxy.url.startswith("https://")
        proxy.wait_servers_up(WRITE, {"node1"})
        response = requests.put(proxy.url + "/v1/secret/data/x", data=b"{}", verify=str(pem), timeout=10)
        assert response.headers["X-Strongroom-Route"] == f"{WRITE}/node1"
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(proxy.url + "/v1/sys/health", timeout=10)  # not trusted without the CA


def test_haproxy_is_stopped_by_its_pid(stand_ins):
    proxy = HAProxyProcess([{"name": "node1", "address": stand_ins["node1"].address}]).start()
    pid = proxy.pid
    proxy.stop()
    assert not proxy.running()
    wait_until(lambda: _gone(pid), 5, f"haproxy pid {pid} to be gone")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


# --- failover: observe on-error mark-down, and the failover helper (strongroom_failover.lua) ------------

#: Regular checks so slow that only the failover helper and `observe` can explain a change within seconds.
SLOW_CHECKS = {"check_interval_ms": 10000}


def _front(stand_ins, **options) -> HAProxyProcess:
    return HAProxyProcess([{"name": n.name, "address": n.address} for n in stand_ins.values()], **options)


def _puts(node: StandInNode) -> int:
    return sum(1 for request in node.seen if request["method"] == "PUT")


def _take_the_active_out(proxy: HAProxyProcess, stand_ins) -> None:
    """node1 (active) is sealed: the 503 it gives the first write takes it out of the write backend
    at once (observe layer7, error-limit 1, on-error mark-down), not after two failed checks."""
    proxy.wait_servers_up(WRITE, {"node1"})
    stand_ins["node1"].role = "sealed"
    answer = send(proxy, "PUT", data=b"{}")
    assert answer.status_code == 503 and answer.headers["X-Strongroom-Node"] == "node1", answer.text
    proxy.wait_servers_up(WRITE, set(), timeout=2.0)


def test_a_5xx_takes_the_node_out_of_the_write_backend_at_once_and_is_not_replayed(stand_ins):
    with _front(stand_ins, **SLOW_CHECKS) as proxy:
        _take_the_active_out(proxy, stand_ins)  # checks alone: 10 s, then 2 x 5 s
        assert _puts(stand_ins["node1"]) == 1
        assert _puts(stand_ins["node2"]) == _puts(stand_ins["node3"]) == 0


def test_a_write_while_no_node_is_active_waits_for_the_new_active_node(stand_ins):
    with _front(stand_ins, **SLOW_CHECKS) as proxy:
        _take_the_active_out(proxy, stand_ins)
        answers: list[requests.Response] = []
        writer = threading.Thread(
            target=lambda: answers.append(send(proxy, "PUT", "/v1/secret/data/held", data=b"{}")), daemon=True
        )
        writer.start()

        def held() -> bool:
            front_row = next(r for r in proxy.stats_rows() if r["pxname"] == "strongroom" and r["svname"] == "FRONTEND")
            return int(front_row["scur"]) >= 1

        wait_until(held, 5, "the write to reach HAProxy")
        assert not answers, "the write was answered while no node was active"
        stand_ins["node2"].role = "active"
        promoted = time.monotonic()
        writer.join(10)
        took = time.monotonic() - promoted
        assert answers and answers[0].status_code == 200, answers and answers[0].text
        assert answers[0].headers["X-Strongroom-Node"] == "node2"
        # The helper probes every 25 ms while the backend is empty; the regular check of a down
        # server comes every 10 s here.
        assert took < 2.0, f"the held write took {took:.2f} s after node2 became active"
        assert "node2" in proxy.servers_up(WRITE)
        assert _puts(stand_ins["node1"]) == 1  # the held write never went to the sealed node


def test_a_write_held_longer_than_write_hold_ms_gets_503(stand_ins):
    with _front(stand_ins, write_hold_ms=300, **SLOW_CHECKS) as proxy:
        _take_the_active_out(proxy, stand_ins)
        started = time.monotonic()
        answer = send(proxy, "PUT", data=b"{}")
        took = time.monotonic() - started
        assert answer.status_code == 503 and "X-Strongroom-Node" not in answer.headers  # HAProxy's own 503
        assert took >= 0.3


def test_without_the_failover_helper_a_write_while_no_node_is_active_gets_503_at_once(stand_ins):
    with _front(stand_ins, failover_lua=None, **SLOW_CHECKS) as proxy:
        _take_the_active_out(proxy, stand_ins)
        answer = send(proxy, "PUT", data=b"{}")
        assert answer.status_code == 503 and "X-Strongroom-Node" not in answer.headers
