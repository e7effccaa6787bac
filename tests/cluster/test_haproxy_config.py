"""The HAProxy configuration: every rendering passes the real ``haproxy -c``
(in zero-warning mode), and the checked-in example never drifts from the template."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strongroom import haproxy
from tests.cluster.certs import self_signed_pem

REPO = Path(__file__).resolve().parents[2]
THREE = [{"name": f"node{i}", "address": f"127.0.0.1:{8200 + i}"} for i in (1, 2, 3)]


def assert_valid(text: str, tmp_path: Path, name: str = "haproxy.cfg") -> None:
    path = tmp_path / name
    path.write_text(text)
    result = haproxy.check(path)
    assert result.ok, f"haproxy -c rejected the rendering:\n{result.output}\n--- {path}:\n{text}"
    assert "Configuration file is valid" in result.output


def test_one_node(tmp_path):
    assert_valid(haproxy.render([{"name": "solo", "address": "127.0.0.1:8201"}]), tmp_path)


def test_three_nodes_with_defaults(tmp_path):
    text = haproxy.render(THREE)
    assert_valid(text, tmp_path)
    assert "bind 127.0.0.1:8200\n" in text
    assert "bind 127.0.0.1:8404\n" in text
    for node in THREE:
        # once in each backend
        assert text.count(f"server {node['name']} {node['address']}\n") == 2


def test_tls_front_with_self_signed_certificate(tmp_path):
    pem = self_signed_pem(tmp_path)
    text = haproxy.render(THREE, tls_cert=str(pem))
    assert f"bind 127.0.0.1:8200 ssl crt {pem} alpn h2,http/1.1" in text
    assert "ssl-min-ver TLSv1.2" in text
    assert_valid(text, tmp_path)


def test_tls_to_the_nodes(tmp_path):
    pem = self_signed_pem(tmp_path)
    verified = haproxy.render(THREE, backend_tls=True, backend_ca_file=str(pem))
    assert "ssl verify required ca-file" in verified
    assert_valid(verified, tmp_path, "verified.cfg")
    assert_valid(haproxy.render(THREE, backend_tls=True), tmp_path, "unverified.cfg")


def test_custom_ports_socket_separate_exporter_and_timeouts(tmp_path):
    text = haproxy.render(
        [{"name": "a", "address": "10.1.2.3:9200"}, {"name": "b", "address": "localhost:9200"}],
        bind="0.0.0.0:18200",
        stats_bind="127.0.0.2:18404",
        prometheus_bind="127.0.0.3:18405",
        stats_socket=str(tmp_path / "admin.sock"),
        check_interval_ms=200,
        fall=1,
        rise=2,
        timeouts={"server": "90s", "check": "400ms"},
        maxconn=100,
        log_target="/dev/log local0",
        route_header=False,
    )
    assert "bind 0.0.0.0:18200\n" in text and "bind 127.0.0.3:18405\n" in text
    assert "inter 200ms fastinter 100ms downinter 200ms fall 1 rise 2" in text  # downinter: the Lua probes
    assert "timeout server 90s\n" in text and "timeout check 400ms\n" in text
    assert "X-Strongroom-Route" not in text
    assert_valid(text, tmp_path)


def test_routing_and_checks_are_as_designed():
    """DESIGN.md, "Health and HAProxy": the parts the cluster tests and operators rely on."""
    text = haproxy.render(THREE)
    assert "acl is_read method GET HEAD LIST\n" in text
    assert "use_backend strongroom_read if is_read\n" in text
    assert "default_backend strongroom_write\n" in text
    write = text[text.index("\nbackend strongroom_write\n") : text.index("\nbackend strongroom_read\n")]
    read = text[text.index("\nbackend strongroom_read\n") : text.index("\nfrontend stats\n")]
    assert "uri /v1/sys/health ver" in write and "http-check expect status 200" in write
    assert "uri /v1/sys/health?perfstandbyok=true ver" in read and "http-check expect status 200" in read
    assert "balance leastconn" in read
    # writes are never replayed after they may have reached a node; reads are
    assert re.search(r"retry-on conn-failure\n", write)
    assert "retry-on conn-failure empty-response response-timeout" in read
    # the write backend's sessions are not cut when observe marks its node down (see the failover tests)
    assert "on-marked-down shutdown-sessions" in read and "shutdown-sessions" not in write
    for backend in (write, read):
        assert "inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1" in backend
    assert "retries 3" in text and "option redispatch" in text and "option forwardfor" in text
    assert "http-request use-service prometheus-exporter if { path /metrics }" in text
    assert "stats uri /stats" in text
    assert "timeout connect 2s" in text
    assert haproxy.WRITE_CHECK_PATH == "/v1/sys/health"
    assert haproxy.READ_CHECK_PATH == "/v1/sys/health?perfstandbyok=true"


def test_the_front_door_drops_every_internal_header():
    """X-Strongroom-Forwarded from a client would stop its standby-forwarded
    requests (api/forward.py): the front door deletes it before any routing."""
    from strongroom.api.forward import FORWARDED_MARK

    assert FORWARDED_MARK in haproxy.INTERNAL_REQUEST_HEADERS
    for options in ({}, {"route_header": False}):
        text = haproxy.render(THREE, **options)
        front = text[text.index("\nfrontend strongroom\n") : text.index("\nbackend strongroom_write\n")]
        for header in haproxy.INTERNAL_REQUEST_HEADERS:
            deleted = f"    http-request del-header {header}\n"
            assert deleted in front
            assert front.index(deleted) < front.index("use_backend")
    assert f"http-request del-header {FORWARDED_MARK}\n" in (REPO / "haproxy" / "haproxy.cfg.example").read_text()


def test_checked_in_example_is_a_fresh_rendering(tmp_path):
    example = REPO / "haproxy" / "haproxy.cfg.example"
    assert example.read_text() == haproxy.example(), (
        "haproxy/haproxy.cfg.example is stale: regenerate it with "
        "`.venv/bin/python -m strongroom.haproxy > haproxy/haproxy.cfg.example`"
    )
    # The example names the helper where the Ansible role installs it; check it with the package's copy.
    assert f"lua-load {haproxy.FAILOVER_LUA_INSTALLED}\n" in example.read_text()
    assert_valid(example.read_text().replace(haproxy.FAILOVER_LUA_INSTALLED, haproxy.FAILOVER_LUA), tmp_path)


@pytest.mark.parametrize(
    "nodes, options, message",
    [
        ([], {}, "at least one node"),
        ([{"name": "a", "address": "127.0.0.1:1"}, {"name": "a", "address": "127.0.0.1:2"}], {}, "appears twice"),
        ([{"name": "bad name", "address": "127.0.0.1:1"}], {}, "not a valid HAProxy server name"),
        ([{"name": "a", "address": "http://127.0.0.1:1"}], {}, "expected host:port"),
        ([{"name": "a", "address": "127.0.0.1"}], {}, "expected host:port"),
        (THREE, {"bind": "8200"}, "bind: expected host:port"),
        (THREE, {"timeouts": {"sever": "1s"}}, "unknown timeout 'sever'"),
        (THREE, {"timeouts": {"server": "thirty"}}, "not an HAProxy duration"),
        (THREE, {"fall": 0}, "fall: must be an integer of at least 1"),
        (THREE, {"check_interval_ms": "500"}, "check_interval_ms"),
        (THREE, {"failover_probe_ms": 0}, "failover_probe_ms: must be an integer of at least 5"),
        (THREE, {"write_hold_ms": -1}, "write_hold_ms: must be an integer of at least 0"),
    ],
)
def test_invalid_input_is_refused_with_the_key(nodes, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        haproxy.render(nodes, **options)


def _section(text: str, name: str) -> str:
    start = text.index(f"\n{name}\n")
    end = text.find("\n\n", start + 1)
    return text[start : end if end != -1 else len(text)] + "\n"


def test_failover_helper_observe_and_hold_in_the_write_backend_only(tmp_path):
    """Failover (haproxy/README.md): the write backend takes a node out on its first refused
    connection or 5xx without cutting its sessions, holds a write while it has no server, and the
    Lua helper probes the nodes meanwhile; down nodes are checked at the normal interval."""
    text = haproxy.render(THREE)
    assert_valid(text, tmp_path)
    assert Path(haproxy.FAILOVER_LUA).is_file()
    glob = _section(text, "global")
    assert f"    lua-load {haproxy.FAILOVER_LUA}\n" in glob
    assert "    setenv STRONGROOM_FAILOVER_PROBE_MS 25\n" in glob
    assert f"    setenv STRONGROOM_FAILOVER_CHECK_URI {haproxy.WRITE_CHECK_PATH}\n" in glob
    write, read = _section(text, "backend strongroom_write"), _section(text, "backend strongroom_read")
    assert "retry-on conn-failure\n" in write  # never empty-response or a status: a write may not run twice
    assert (
        "    http-request lua.strongroom_wait_for_active strongroom_write 3000 if { nbsrv(strongroom_write) eq 0 }\n"
        in write
    )
    assert "    default-server check inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1 " in write
    assert write.rstrip().count("observe layer7 error-limit 1 on-error mark-down") == 1
    assert "shutdown-sessions" not in write
    assert "lua." not in read and "observe" not in read
    assert "on-marked-down shutdown-sessions\n" in read


def test_without_the_failover_helper_down_nodes_are_checked_twice_as_often(tmp_path):
    text = haproxy.render(THREE, failover_lua=None, check_interval_ms=400)
    assert_valid(text, tmp_path)
    assert "lua" not in text and "STRONGROOM_FAILOVER" not in text
    assert "check inter 400ms fastinter 200ms downinter 200ms fall 2 rise 1" in text
    assert "observe layer7 error-limit 1 on-error mark-down" in text  # observe needs no Lua


def test_failover_helper_settings_and_tls_probes(tmp_path):
    text = haproxy.render(THREE, failover_probe_ms=40, write_hold_ms=1500, backend_tls=True)
    assert_valid(text, tmp_path)
    assert "    setenv STRONGROOM_FAILOVER_PROBE_MS 40\n" in text
    assert "    setenv STRONGROOM_FAILOVER_SCHEME https\n" in text
    assert "    httpclient.ssl.verify none\n" in text
    assert "lua.strongroom_wait_for_active strongroom_write 1500 if" in text
    # No hold, no helper: it runs only for held writes, so down nodes are checked twice as often again.
    unheld = haproxy.render(THREE, write_hold_ms=0)
    assert "lua" not in unheld and "downinter 250ms" in unheld
    pem = self_signed_pem(tmp_path)
    verified = haproxy.render(THREE, backend_tls=True, backend_ca_file=str(pem))
    assert "    httpclient.ssl.verify required\n" in verified
    assert f"    httpclient.ssl.ca-file {pem}\n" in verified
    assert_valid(verified, tmp_path, "verified.cfg")
