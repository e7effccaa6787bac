"""Consul over HTTPS: ``ConsulBackend`` and a whole node against a real Consul
agent serving its API with TLS (``ports { https }``, ``cert_file``, ``key_file``).

The certificates are made here with ``cryptography``: a CA, a server
certificate for IP 127.0.0.1 and a client certificate signed by it, and an
unrelated CA that must be refused.  Agents keep their plain HTTP port too; the
readiness checks and the "what is really in Consul" reads use it, so they do
not depend on the code under test.  Nothing sleeps: waits poll with a deadline.

https://developer.hashicorp.com/vault/docs/configuration/storage/consul
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import ipaddress
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.errors import LockLost, StorageUnavailable
from strongroom.storage import TxnOp
from strongroom.storage.consul import ConsulBackend
from strongroom.storage.consul_session import ConsulSessions
from tests.helpers.procs import ConsulAgent, StrongroomServer, free_port, start_agent, wait_until

# -- certificates --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PKI:
    """Paths of the PEM files one test module uses."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    other_ca: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> str:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(path)


def _write_cert(cert: x509.Certificate, path: Path) -> str:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def _make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    usage: x509.ObjectIdentifier,
    ip: str | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated CA."""
    directory = tmp_path_factory.mktemp("consul-pki")
    ca, ca_key = _make_ca("strongroom-test-consul-ca")
    server, server_key = _issue(ca, ca_key, "server.dc1.consul", ExtendedKeyUsageOID.SERVER_AUTH, ip="127.0.0.1")
    client, client_key = _issue(ca, ca_key, "strongroom-node", ExtendedKeyUsageOID.CLIENT_AUTH)
    other, _ = _make_ca("some-other-ca")
    return PKI(
        ca=_write_cert(ca, directory / "ca.pem"),
        server_cert=_write_cert(server, directory / "server.pem"),
        server_key=_write_key(server_key, directory / "server-key.pem"),
        client_cert=_write_cert(client, directory / "client.pem"),
        client_key=_write_key(client_key, directory / "client-key.pem"),
        other_ca=_write_cert(other, directory / "other-ca.pem"),
    )


def _tls_hcl(pki: PKI, verify_incoming: bool = False) -> str:
    hcl = f'cert_file = "{pki.server_cert}"\nkey_file = "{pki.server_key}"\nca_file = "{pki.ca}"\n'
    return hcl + ("verify_incoming_https = true\n" if verify_incoming else "")


@pytest.fixture(scope="module")
def https_agent(pki):
    """A real Consul agent serving its API over HTTPS too (client certificates not required)."""
    agent = start_agent(https=True, extra_hcl=_tls_hcl(pki))
    try:
        yield agent
    finally:
        agent.stop()


@contextlib.contextmanager
def consul_backends(cleanup: ConsulAgent) -> Iterator[Callable[..., ConsulBackend]]:
    """``make(address, **tls)`` builds a ``ConsulBackend`` at ``address`` under a
    prefix of its own; afterwards each is closed and its prefix removed through
    ``cleanup`` over plain HTTP."""
    made: list[ConsulBackend] = []

    def make(address: str, **tls) -> ConsulBackend:
        backend = ConsulBackend.from_config(address, prefix=f"tls-{uuid.uuid4().hex}/", timeout=5.0, **tls)
        made.append(backend)
        return backend

    try:
        yield make
    finally:
        for backend in made:
            backend.close()
            cleanup.client().kv.delete(backend.prefix, recurse=True)


@pytest.fixture
def backends(https_agent):
    """Build ``ConsulBackend``s on the HTTPS port of ``agent`` (default: ``https_agent``;
    ``tls_*`` keyword arguments as given), each under its own prefix."""
    with consul_backends(https_agent) as make:
        yield lambda agent=None, **tls: make((agent or https_agent).https_addr, **tls)


def in_consul(agent: ConsulAgent, key: str) -> bytes | None:
    """The value Consul holds at ``key``, read over plain HTTP with a plain client."""
    _, entry = agent.client().kv.get(key)
    return None if entry is None else (entry["Value"] or b"")


def exercise(backend: ConsulBackend) -> None:
    """Every kind of request the backend sends, each checked against what it wrote."""
    first = backend.put("core/a", b"one")
    assert backend.get("core/a") == b"one"
    value, index = backend.get_with_index("core/a")
    assert value == b"one" and 0 < index <= first
    assert (
        backend.txn(
            [
                TxnOp("check-index", "core/a", index=index),
                TxnOp("set", "sys/b", b"two"),
                TxnOp("set", "sys/c/d", bytes(range(256))),
            ]
        )
        > first
    )
    assert {key: value for key, (value, _) in backend.get_prefix("").items()} == {
        "core/a": b"one",
        "sys/b": b"two",
        "sys/c/d": bytes(range(256)),
    }
    assert backend.list("") == ["core/", "sys/"]
    assert backend.list("sys/") == ["b", "c/"]
    backend.txn([TxnOp("delete", "sys/b")])
    assert backend.get("sys/b") is None
    assert backend.list("sys/") == ["c/"]


# -- the backend ---------------------------------------------------------------


def test_backend_over_https_with_tls_ca_file(backends, https_agent, pki):
    backend = backends(tls_ca_file=pki.ca)
    assert backend.client.http.base_uri == https_agent.https_addr
    exercise(backend)
    # What went over TLS is what plain HTTP reads back.
    assert in_consul(https_agent, backend.prefix + "core/a") == b"one"
    assert in_consul(https_agent, backend.prefix + "sys/c/d") == bytes(range(256))


def test_sessions_and_fenced_writes_over_https(backends, https_agent, pki):
    """The HA layer's requests (py-consul) use the same TLS settings as the KV path."""
    backend = backends(tls_ca_file=pki.ca)
    sessions = ConsulSessions.for_backend(backend)
    session = sessions.create_session("strongroom-tls-test", ["serfHealth"])
    try:
        assert sessions.acquire("core/lock", b"node-a", session)
        lost: list[bool] = []
        fenced = ConsulBackend(
            backend.client,
            prefix=backend.prefix,
            fence=lambda: ("core/lock", session),
            on_lock_lost=lambda: lost.append(True),
        )
        fenced.put("sys/x", b"fenced")
        assert sessions.release("core/lock", session)
        with pytest.raises(LockLost):
            fenced.put("sys/x", b"after release")
        assert lost == [True]
        assert in_consul(https_agent, backend.prefix + "sys/x") == b"fenced"
    finally:
        sessions.destroy_session(session)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # what tls_skip_verify means
def test_tls_skip_verify_works_without_the_ca(backends, https_agent):
    backend = backends(tls_skip_verify=True)
    exercise(backend)
    assert in_consul(https_agent, backend.prefix + "core/a") == b"one"
    sessions = ConsulSessions.for_backend(backend)
    sessions.destroy_session(sessions.create_session("strongroom-tls-test", ["serfHealth"]))


def assert_every_request_unavailable(backend: ConsulBackend) -> list[StorageUnavailable]:
    """Each kind of request fails with StorageUnavailable (pytest.raises lets no other type through)."""
    requests = [
        lambda: backend.get("core/a"),
        lambda: backend.get_prefix(""),
        lambda: backend.list(""),
        lambda: backend.put("core/a", b"x"),
        lambda: backend.txn([TxnOp("set", "core/a", b"x"), TxnOp("delete", "core/b")]),
        lambda: ConsulSessions.for_backend(backend).create_session("strongroom-tls-test", ["serfHealth"]),
    ]
    errors = []
    for request in requests:
        with pytest.raises(StorageUnavailable) as info:
            request()
        errors.append(info.value)
    return errors


@pytest.mark.parametrize("trust", ["another CA", "system CAs"])
def test_untrusted_consul_certificate_is_storage_unavailable(backends, https_agent, pki, trust):
    """A certificate the node cannot verify (a tls_ca_file of another CA; or none,
    so only the system's CAs) fails every request, before anything is sent."""
    backend = backends(tls_ca_file=pki.other_ca) if trust == "another CA" else backends()
    for error in assert_every_request_unavailable(backend):
        assert https_agent.https_addr in str(error) and "SSL" in str(error)
    assert in_consul(https_agent, backend.prefix + "core/a") is None


def test_client_certificate_when_consul_requires_one(pki, backends):
    """verify_incoming_https: tls_cert_file and tls_key_file are presented to Consul."""
    with start_agent(https=True, extra_hcl=_tls_hcl(pki, verify_incoming=True)) as agent:
        backend = backends(agent, tls_ca_file=pki.ca, tls_cert_file=pki.client_cert, tls_key_file=pki.client_key)
        exercise(backend)
        sessions = ConsulSessions.for_backend(backend)
        sessions.destroy_session(sessions.create_session("strongroom-tls-test", ["serfHealth"]))
        assert in_consul(agent, backend.prefix + "core/a") == b"one"
        assert_every_request_unavailable(backends(agent, tls_ca_file=pki.ca))


# -- a whole node --------------------------------------------------------------


def node_keeps_a_secret_over_https(agent: ConsulAgent, settings: str, folder: Path) -> str:
    """A node with ``settings`` (lines of its storage block besides address and
    path) on ``agent`` over HTTPS initialises, unseals, becomes active, keeps a
    KV secret in Consul and registers as active; its output is returned."""
    prefix = f"sr-tls-{uuid.uuid4().hex[:12]}/"
    storage = f'storage "consul" {{\n  address = "{agent.https_addr}"\n  path = "{prefix}"\n{settings}}}\n'
    with StrongroomServer(folder, None, free_port(), workers=2, storage=storage) as node:
        init = node.init(1, 1)
        token = init["root_token"]
        assert node.unseal(init["keys"])["sealed"] is False
        wait_until(lambda: node.api("GET", "sys/health").status_code == 200, 30, "the node to become active")
        assert node.api("POST", "sys/mounts/secret", token=token, json={"type": "kv-v2"}).status_code == 204
        written = node.api("POST", "secret/data/app", token=token, json={"data": {"password": "s3cret"}})
        assert written.status_code == 200, written.text
        assert node.api("GET", "secret/data/app", token=token).json()["data"]["data"] == {"password": "s3cret"}
        # The node's data and its service registration went over TLS into Consul.
        _, keys = agent.client().kv.get(prefix, keys=True)
        assert prefix + "core/seal-config" in keys and any(key.startswith(prefix + "logical/") for key in keys)

        def registered_active() -> bool:
            _, instances = agent.client().catalog.service("strongroom")
            return any("active" in instance["ServiceTags"] for instance in instances)

        wait_until(registered_active, 10, "the node registered as active in Consul")
        log = node.log()
    agent.client().kv.delete(prefix, recurse=True)
    assert "Traceback" not in log
    return log


def test_node_on_consul_over_https(https_agent, pki, tmp_path):
    """A node whose storage block names an https:// address and tls_ca_file
    initialises, unseals, becomes active and keeps a KV secret in Consul."""
    node_keeps_a_secret_over_https(https_agent, f'  tls_ca_file = "{pki.ca}"\n', tmp_path / "node")
