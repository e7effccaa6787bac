"""Start-up: configuration errors, dev mode, TLS."""

import datetime
import subprocess

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers.procs import StrongroomServer, free_port, strongroom_binary, wait_until


def test_unknown_key_stops_startup_naming_it(tmp_path):
    config = tmp_path / "bad.hcl"
    config.write_text('storage "inmem" {}\nlistener "tcp" {\n  adress = "127.0.0.1:1"\n  tls_disable = true\n}\n')
    result = subprocess.run(
        [strongroom_binary(), "server", "-config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert "adress" in result.stderr


def test_dev_mode_is_initialised_unsealed_with_kv_v2(tmp_path):
    port = free_port()
    log = open(tmp_path / "dev.log", "wb")
    proc = subprocess.Popen(
        [strongroom_binary(), "server", "-dev", "-dev-root-token-id=devroot", f"-dev-listen-address=127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1"
        wait_until(lambda: requests.get(url + "/sys/health", timeout=1).status_code == 200, 30, "dev node")
        headers = {"X-Vault-Token": "devroot"}
        assert requests.post(url + "/secret/data/x", json={"data": {"a": "b"}}, headers=headers).status_code == 200
        assert requests.get(url + "/secret/data/x", headers=headers).json()["data"]["data"] == {"a": "b"}
        output = (tmp_path / "dev.log").read_text()
        assert "Root Token: devroot" in output and "Unseal Key:" in output
    finally:
        proc.terminate()
        proc.wait(15)


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


def test_tls_listener(consul_agent, tmp_path):
    import hvac

    tls = _self_signed(tmp_path)
    node = StrongroomServer(tmp_path / "tls", consul_agent.address, free_port(), workers=2, prefix="sr-tls/", tls=tls)
    node.start()
    try:
        assert node.url.startswith("https://")
        client = hvac.Client(url=node.url, verify=tls[0])
        assert client.sys.is_initialized() is False
        result = client.sys.initialize(1, 1)
        client.sys.submit_unseal_key(result["keys"][0])
        client.token = result["root_token"]
        assert client.sys.is_sealed() is False
        # Plain HTTP on the TLS port and a client that does not trust the certificate
        # are refused, and leave nothing in the node's log (no traceback per attempt).
        for _ in range(5):
            with pytest.raises(requests.ConnectionError):
                requests.get(node.url.replace("https", "http") + "/v1/sys/health", timeout=2)
            with pytest.raises(requests.exceptions.SSLError):
                requests.get(node.url + "/v1/sys/health", verify=True, timeout=2)
        assert requests.get(node.url + "/v1/sys/health", verify=tls[0], timeout=5).status_code == 200
        assert "Traceback" not in node.log_text() and "SSLError" not in node.log_text()
    finally:
        node.stop()


def test_second_node_on_a_taken_port_refuses_to_start(make_node, tmp_path):
    node = make_node(workers=2)
    config = tmp_path / "same-port.hcl"
    config.write_text(node.config_path.read_text())
    result = subprocess.run(
        [strongroom_binary(), "server", "-config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert "cannot listen on" in result.stderr


def test_node_waits_for_consul_and_starts_when_it_comes(tmp_path):
    """Boot order is not guaranteed: a node started before its Consul says why it
    waits (no traceback) and comes up as soon as Consul answers."""
    from tests.helpers.procs import ConsulAgent

    ports = {name: free_port() for name in ("http", "serf_lan", "serf_wan", "server")}
    node = StrongroomServer(tmp_path / "node", f"127.0.0.1:{ports['http']}", free_port(), workers=1)
    node.proc = subprocess.Popen(
        [strongroom_binary(), "server", "-config", str(node.config_path)],
        stdout=open(node.log_path, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: "waiting for storage" in node.log_path.read_text(), 30, "the waiting message")
        assert node.proc.poll() is None
        assert "Traceback" not in node.log_path.read_text()
        with ConsulAgent(ports=ports):
            wait_until(lambda: node.api("GET", "sys/health").status_code == 501, 30, "the node answering")
            assert node.api("PUT", "sys/init", json={"secret_shares": 1, "secret_threshold": 1}).status_code == 200
    finally:
        node.proc.terminate()
        node.proc.wait(15)
