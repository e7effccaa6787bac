"""The transit seal (core/seal_transit.py) and the auto-seal side of the seal
state machine (core/seal.py, core/recovery.py, api/sys_seal.py), against a
real OpenBao (``bao server -dev``) as the unsealer.

The node here is in memory (one process, Falcon's TestClient); restarts,
clusters and the unsealer going away are in
tests/integration/node/test_auto_unseal.py.
"""

from __future__ import annotations

import base64
import json
import socket
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from strongroom.api.app import create_app
from strongroom.auth.methods import AUTH_TYPES
from strongroom.config import ConfigError, loads
from strongroom.config.model import TransitSealConfig
from strongroom.core.core import Core
from strongroom.core.recovery import decode_root_token
from strongroom.core.seal import KEYRING_PATH, RECOVERY_KEY_PATH, ROOT_KEY_PATH, SEAL_CONFIG_PATH, SealManager
from strongroom.core.seal_transit import TransitSeal, resolve_settings, transit_seal
from strongroom.engines import ENGINE_TYPES
from strongroom.errors import IntegrityError, StorageUnavailable
from strongroom.storage.inmem import InmemBackend
from tests.helpers.procs import Process, free_port, openbao_binary
from tests.helpers.unit_node import FakeClock
from tests.helpers.vault_client import VaultTestClient


@pytest.fixture
def transit(openbao_dev_server):
    """A transit mount and key of this test's own on the session's OpenBao: (mount, key)."""
    mount = f"transit-{uuid.uuid4().hex[:8]}"
    assert openbao_dev_server.api("POST", f"sys/mounts/{mount}", json={"type": "transit"}).status_code == 204
    assert openbao_dev_server.api("POST", f"{mount}/keys/unseal", json={}).status_code in (200, 204)
    yield mount, "unseal"
    openbao_dev_server.api("DELETE", f"sys/mounts/{mount}")


def _seal(bao, transit, **overrides) -> TransitSeal:
    mount, key = transit
    settings = {"address": bao.url, "token": "root", "key_name": key, "mount_path": mount + "/", **overrides}
    return transit_seal(TransitSealConfig(**settings), environ={})


class AutoNode:
    """An in-memory node whose seal is the transit seal; ``again()`` is the same
    storage seen by a freshly started node (nothing in memory)."""

    def __init__(self, seal: TransitSeal, backend: InmemBackend | None = None):
        self.clock = FakeClock()
        self.backend = backend or InmemBackend()
        self.transit = seal
        self.seal = SealManager(self.backend, self.clock, storage_type="inmem", auto_seal=seal)
        self.core = Core(self.backend, self.seal, backends=ENGINE_TYPES, auth_backends=AUTH_TYPES, clock=self.clock)
        self.client = VaultTestClient(create_app(self.core, node_id="unit"))
        self.root_token = ""
        self.recovery_keys: list[str] = []

    def again(self) -> AutoNode:
        return AutoNode(self.transit, self.backend)

    def init(self, shares: int = 3, threshold: int = 2) -> dict:
        body = {"recovery_shares": shares, "recovery_threshold": threshold}
        result = self.client.simulate_put("/v1/sys/init", json=body)
        assert result.status_code == 200, result.text
        self.root_token = result.json["root_token"]
        self.recovery_keys = result.json.get("recovery_keys", [])
        return result.json

    def request(self, method: str, path: str, token: str | None = None, **kwargs):
        headers = {"X-Vault-Token": self.root_token if token is None else token}
        return self.client.simulate_request(method=method, path="/v1/" + path, headers=headers, **kwargs)


@pytest.fixture
def auto(openbao_dev_server, transit) -> AutoNode:
    return AutoNode(_seal(openbao_dev_server, transit))


# --- the transit seal itself ----------------------------------------------------------


def test_wrap_round_trips_and_is_bound_to_its_path(openbao_dev_server, transit):
    seal = _seal(openbao_dev_server, transit)
    secret = b"\x01" * 32
    stored = seal.wrap(secret, ROOT_KEY_PATH)
    assert secret not in stored and base64.b64encode(secret) not in stored
    envelope = json.loads(stored)
    assert envelope["wrapped_key"].startswith("vault:v1:")
    assert seal.unwrap(stored, ROOT_KEY_PATH) == secret
    with pytest.raises(IntegrityError):
        seal.unwrap(stored, KEYRING_PATH)  # moved to another path: does not open
    # The data key is the unsealer's: another transit key cannot open it.
    mount, _ = transit
    assert openbao_dev_server.api("POST", f"{mount}/keys/other", json={}).status_code in (200, 204)
    other = _seal(openbao_dev_server, (mount, "other"))
    with pytest.raises(StorageUnavailable, match="answered 400"):
        other.unwrap(stored, ROOT_KEY_PATH)


def test_unreachable_or_refusing_unsealer_is_storage_unavailable_without_the_token(openbao_dev_server, transit):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    down = _seal(openbao_dev_server, transit, address=f"http://127.0.0.1:{closed}", token="s.secret-token")
    with pytest.raises(StorageUnavailable, match="unreachable") as unreachable:
        down.wrap(b"k" * 32, ROOT_KEY_PATH)
    refused = _seal(openbao_dev_server, transit, token="s.secret-token")
    with pytest.raises(StorageUnavailable, match="answered 403") as forbidden:
        refused.wrap(b"k" * 32, ROOT_KEY_PATH)
    for error in (unreachable.value, forbidden.value):
        assert "secret-token" not in str(error)


def test_settings_fall_back_to_the_environment_as_vault_documents():
    written = TransitSealConfig(key_name="from-file", mount_path="transit/")
    environ = {
        "VAULT_ADDR": "https://unsealer:8200/",
        "VAULT_TOKEN": "s.env",
        "VAULT_TRANSIT_SEAL_KEY_NAME": "from-env",
        "VAULT_CACERT": "/etc/ca.pem",
        "VAULT_SKIP_VERIFY": "true",
        "VAULT_TRANSIT_SEAL_DISABLE_RENEWAL": "true",
    }
    settings = resolve_settings(written, environ)
    assert (settings.address, settings.token) == ("https://unsealer:8200", "s.env")
    assert settings.key_name == "from-env"  # go-kms-wrapping reads the variable first
    assert settings.mount_path == "transit" and settings.tls_ca_cert == "/etc/ca.pem"
    assert settings.tls_skip_verify and settings.disable_renewal
    # The file wins for address and token.
    mine = resolve_settings(TransitSealConfig(address="http://a:1", token="t", key_name="k", mount_path="m"), environ)
    assert (mine.address, mine.token, mine.key_name) == ("http://a:1", "t", "from-env")


BLOCK = TransitSealConfig(address="http://a:1", token="t", key_name="k", mount_path="m")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("t", True), ("TRUE", True), ("True", True), ("0", False), ("f", False), ("False", False)],
)
def test_boolean_variables_are_read_with_go_parsebool(value, expected):
    settings = resolve_settings(BLOCK, {"VAULT_SKIP_VERIFY": value, "VAULT_TRANSIT_SEAL_DISABLE_RENEWAL": value})
    assert settings.tls_skip_verify is expected and settings.disable_renewal is expected


def test_an_empty_boolean_variable_leaves_the_block_as_written():
    written = replace(BLOCK, tls_skip_verify=True, disable_renewal=True)
    settings = resolve_settings(written, {"VAULT_SKIP_VERIFY": "", "VAULT_TRANSIT_SEAL_DISABLE_RENEWAL": ""})
    assert settings.tls_skip_verify and settings.disable_renewal
    # A set variable wins for disable_renewal (go-kms-wrapping reads it first).
    assert not resolve_settings(written, {"VAULT_TRANSIT_SEAL_DISABLE_RENEWAL": "false"}).disable_renewal


@pytest.mark.parametrize("value", ["yes", "on", "no", "off", "junk", " true", "tRUE"])
@pytest.mark.parametrize(
    ("variable", "key"),
    [("VAULT_SKIP_VERIFY", "tls_skip_verify"), ("VAULT_TRANSIT_SEAL_DISABLE_RENEWAL", "disable_renewal")],
)
def test_a_boolean_variable_go_cannot_parse_fails_start_up(variable, key, value):
    """Vault's API client refuses an unparsable VAULT_SKIP_VERIFY ("could not parse
    VAULT_SKIP_VERIFY") and go-kms-wrapping an unparsable disable_renewal; reading
    ``yes`` or ``on`` as false would quietly turn verification on or renewal off."""
    with pytest.raises(ConfigError, match=f"could not parse {variable}") as refused:
        resolve_settings(BLOCK, {variable: value})
    assert refused.value.key == f'seal "transit".{key}'


@pytest.mark.parametrize(
    "settings,environ,message",
    [
        (
            {"token": "t", "key_name": "k", "mount_path": "m"},
            {},
            'seal "transit".address: required (or set VAULT_ADDR)',
        ),
        ({"address": "http://a:1", "key_name": "k", "mount_path": "m"}, {}, "token: required (or set VAULT_TOKEN)"),
        ({"address": "http://a:1", "token": "t", "mount_path": "m"}, {}, "key_name: required"),
        ({"address": "a:1", "token": "t", "key_name": "k", "mount_path": "m"}, {}, "http:// or https://"),
        (
            {"address": "http://a:1", "token": "t", "key_name": "k", "mount_path": "m", "tls_client_cert": "/c"},
            {},
            "tls_client_cert and tls_client_key go together",
        ),
    ],
)
def test_missing_or_bad_settings_name_the_key(settings, environ, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_settings(TransitSealConfig(**settings), environ)


def test_seal_block_parses_and_refuses_what_strongroom_does_not_do():
    base = 'storage "consul" {}\nlistener "tcp" {\n  tls_disable = true\n}\n'
    config = loads(
        base + 'seal "transit" {\n  address = "http://u:8200"\n  key_name = "k"\n  mount_path = "transit/"\n'
        '  tls_skip_verify = "true"\n  disable_renewal = true\n}\n',
        "node.hcl",
    )
    assert config.seal == TransitSealConfig(
        address="http://u:8200", key_name="k", mount_path="transit/", tls_skip_verify=True, disable_renewal=True
    )
    assert loads(base, "node.hcl").seal is None
    for block, message in [
        ('seal "awskms" {}\n', 'unsupported seal type "awskms"'),
        ('seal "transit" {\n  disabled = "true"\n}\n', "seal migration is not supported"),
        ('seal "transit" {\n  adress = "x"\n}\n', 'unknown key "adress"'),
    ]:
        with pytest.raises(ConfigError, match=message):
            loads(base + block, "node.hcl")
    with pytest.raises(ConfigError, match='needs storage "consul"'):
        loads('storage "inmem" {}\nlistener "tcp" {\n  tls_disable = true\n}\nseal "transit" {}\n', "node.hcl")


# --- the seal state machine with an auto seal ---------------------------------------


def test_status_before_init_says_transit_and_recovery_seal(auto):
    status = auto.client.simulate_get("/v1/sys/seal-status").json
    assert (status["type"], status["recovery_seal"], status["initialized"], status["sealed"]) == (
        "transit",
        True,
        False,
        True,
    )


def test_init_returns_recovery_keys_and_unseals_the_node(auto):
    body = auto.init(5, 3)
    assert body["keys"] == [] and body["keys_base64"] == []
    assert len(body["recovery_keys"]) == 5
    assert [base64.b64decode(k).hex() for k in body["recovery_keys_base64"]] == body["recovery_keys"]
    status = auto.client.simulate_get("/v1/sys/seal-status").json
    assert status["sealed"] is False and status["initialized"] is True
    assert (status["type"], status["recovery_seal"], status["t"], status["n"]) == ("transit", True, 3, 5)
    assert auto.request("POST", "sys/mounts/kv", json={"type": "kv"}).status_code == 204
    assert auto.request("PUT", "kv/a", json={"v": "1"}).status_code == 204
    # Nothing of the keys in storage in the clear: the root key is in a transit envelope.
    stored = auto.backend.get(ROOT_KEY_PATH)
    keyring = auto.seal.keyring()
    assert keyring is not None and keyring.root_key not in stored
    assert json.loads(stored)["wrapped_key"].startswith("vault:v1:")
    assert json.loads(auto.backend.get(SEAL_CONFIG_PATH))["type"] == "transit"


def test_a_restarted_node_unseals_itself_and_reads_the_data(auto):
    auto.init()
    auto.request("POST", "sys/mounts/kv", json={"type": "kv"})
    auto.request("PUT", "kv/a", json={"v": "1"})
    restarted = auto.again()
    restarted.root_token = auto.root_token
    assert restarted.seal.status()["sealed"] is True
    assert restarted.seal.auto_unseal() is True
    assert restarted.request("GET", "kv/a").json["data"] == {"v": "1"}


def test_auto_unseal_waits_for_init_and_for_the_unsealer(openbao_dev_server, transit, auto):
    assert auto.seal.auto_unseal() is False  # not initialised: nothing to unseal yet
    auto.init()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    unreachable = AutoNode(_seal(openbao_dev_server, transit, address=f"http://127.0.0.1:{closed}"), auto.backend)
    with pytest.raises(StorageUnavailable, match="unreachable"):
        unreachable.seal.auto_unseal()
    assert unreachable.seal.status()["sealed"] is True


@pytest.mark.parametrize(
    "body,message",
    [
        ({"secret_shares": 3, "secret_threshold": 2}, "parameters secret_shares,secret_threshold not applicable"),
        ({"recovery_shares": 3, "recovery_threshold": 4}, "threshold cannot be larger than shares"),
        ({"recovery_shares": 3, "recovery_threshold": 1}, "threshold must be greater than one"),
        ({"recovery_shares": "3", "recovery_threshold": 2}, "must be an integer"),
    ],
)
def test_init_refuses_bad_parameters_and_writes_nothing(auto, body, message):
    result = auto.client.simulate_put("/v1/sys/init", json=body)
    assert result.status_code == 400 and message in result.json["errors"][0], result.text
    assert auto.backend._data == {}


def test_shamir_init_refuses_recovery_parameters():
    node = SealManager(InmemBackend(), FakeClock(), storage_type="inmem")
    core = Core(node._backend, node, backends=ENGINE_TYPES, auth_backends=AUTH_TYPES, clock=FakeClock())
    client = VaultTestClient(create_app(core, node_id="unit"))
    body = {"secret_shares": 1, "secret_threshold": 1, "recovery_shares": 3, "recovery_threshold": 2}
    result = client.simulate_put("/v1/sys/init", json=body)
    assert result.status_code == 400
    assert result.json == {
        "errors": ["parameters recovery_shares,recovery_threshold not applicable to seal type shamir"]
    }


def test_init_without_recovery_shares_has_no_recovery_keys(auto):
    body = auto.init(0, 0)
    assert "recovery_keys" not in body and auto.backend.get(RECOVERY_KEY_PATH) is None
    assert auto.seal.status()["sealed"] is False
    auto.request("PUT", "sys/seal")
    refused = auto.client.simulate_put("/v1/sys/unseal", json={"key": "00" * 33})
    assert refused.status_code == 400 and "no recovery keys" in refused.json["errors"][0]


def test_unseal_takes_only_recovery_keys_after_a_manual_seal(auto):
    auto.init(3, 2)
    assert auto.request("PUT", "sys/seal").status_code == 204
    assert auto.seal.status()["sealed"] is True
    # Not the recovery key: refused (as an unseal key of another cluster would be), still sealed.
    foreign = ["01" * 33, "02" * 33]
    auto.client.simulate_put("/v1/sys/unseal", json={"key": foreign[0]})
    refused = auto.client.simulate_put("/v1/sys/unseal", json={"key": foreign[1]})
    assert refused.status_code == 400 and "recovery key" in refused.json["errors"][0], refused.text
    assert auto.seal.status()["sealed"] is True
    first = auto.client.simulate_put("/v1/sys/unseal", json={"key": auto.recovery_keys[0]}).json
    assert first["sealed"] is True and first["progress"] == 1
    second = auto.client.simulate_put("/v1/sys/unseal", json={"key": auto.recovery_keys[2]}).json
    assert second["sealed"] is False


def _rekey_recovery(node: AutoNode, keys: list[str], shares: int, threshold: int) -> dict:
    init = node.request(
        "PUT", "sys/rekey-recovery-key/init", json={"secret_shares": shares, "secret_threshold": threshold}
    )
    assert init.status_code == 200, init.text
    body = {}
    for key in keys:
        body = node.request("PUT", "sys/rekey-recovery-key/update", json={"key": key, "nonce": init.json["nonce"]}).json
    return body


def test_rekey_recovery_key_replaces_the_recovery_shares(auto):
    auto.init(3, 2)
    done = _rekey_recovery(auto, auto.recovery_keys[:2], 4, 3)
    assert done["complete"] is True and len(done["keys"]) == 4, done
    assert auto.seal.status()["n"] == 4 and auto.seal.status()["t"] == 3
    # The old shares no longer prove anything; the new ones do.
    wrong = _rekey_recovery(auto, auto.recovery_keys[:3], 2, 2)
    assert "recovery key verification failed" in json.dumps(wrong)
    auto.request("DELETE", "sys/rekey-recovery-key/init")
    again = _rekey_recovery(auto, done["keys"][:3], 1, 1)
    assert again["complete"] is True and len(again["keys"]) == 1
    # sys/rekey (the unseal key) has nothing to rekey under an auto seal.
    barrier = auto.request("PUT", "sys/rekey/init", json={"secret_shares": 1, "secret_threshold": 1})
    assert barrier.status_code == 400 and "rekey-recovery-key" in barrier.json["errors"][0]


def test_rekey_recovery_key_is_refused_under_the_shamir_seal(unsealed):
    result = unsealed.request("PUT", "sys/rekey-recovery-key/init", json={"secret_shares": 1, "secret_threshold": 1})
    assert result.status_code == 400 and result.json == {"errors": ["recovery rekeying not supported"]}


def test_generate_root_takes_recovery_keys(auto):
    auto.init(3, 2)
    attempt = auto.request("PUT", "sys/generate-root/attempt", json={}).json
    assert attempt["required"] == 2
    body = {}
    for key in auto.recovery_keys[:2]:
        body = auto.request("PUT", "sys/generate-root/update", json={"key": key, "nonce": attempt["nonce"]}).json
    assert body["complete"] is True, body
    token = decode_root_token(body["encoded_token"], attempt["otp"])
    assert auto.request("GET", "auth/token/lookup-self", token=token).json["data"]["policies"] == ["root"]
    # Shares that are not the recovery key generate nothing.
    attempt = auto.request("PUT", "sys/generate-root/attempt", json={}).json
    auto.request("PUT", "sys/generate-root/update", json={"key": "01" * 33, "nonce": attempt["nonce"]})
    failed = auto.request("PUT", "sys/generate-root/update", json={"key": "02" * 33, "nonce": attempt["nonce"]})
    assert failed.status_code == 400 and "root generation aborted" in failed.json["errors"][0]


class OpenBaoTLSDevServer(Process):
    """``bao server -dev -dev-tls``: OpenBao's own CA and a certificate for
    localhost and 127.0.0.1 in a directory of its own."""

    name = "openbao TLS dev server"
    stop_timeout = 15.0
    kill_group = True

    def __init__(self, directory: Path):
        self.dir = directory
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca = directory / "vault-ca.pem"
        super().__init__(directory / "server.log")

    def start(self) -> OpenBaoTLSDevServer:
        argv = [
            openbao_binary(),
            "server",
            "-dev",
            "-dev-tls",
            f"-dev-tls-cert-dir={self.dir}",
            "-dev-root-token-id=root",
            f"-dev-listen-address=127.0.0.1:{self.port}",
            "-dev-no-store-token",
        ]
        self._spawn(argv, cwd=self.dir, env={"HOME": str(self.dir), "PATH": "/usr/bin:/bin"})

        def ready() -> bool:
            headers = {"X-Vault-Token": "root"}
            mounts = requests.get(f"{self.url}/v1/sys/mounts", headers=headers, verify=str(self.ca), timeout=2)
            return mounts.status_code == 200

        self._wait_ready(ready, 60, f"{self.name} on {self.url}")
        for path, body in (("sys/mounts/transit", {"type": "transit"}), ("transit/keys/unseal", {})):
            answer = requests.post(
                f"{self.url}/v1/{path}", json=body, headers={"X-Vault-Token": "root"}, verify=str(self.ca), timeout=5
            )
            assert answer.status_code in (200, 204), answer.text
        return self


# tls_skip_verify=True is one of the settings under test: urllib3 warns about the
# unverified request it was told to make.
@pytest.mark.filterwarnings("ignore:Unverified HTTPS request:urllib3.exceptions.InsecureRequestWarning")
def test_tls_settings_are_honoured(tmp_path):
    with OpenBaoTLSDevServer(tmp_path) as bao:
        base = {"address": bao.url, "token": "root", "key_name": "unseal", "mount_path": "transit"}

        def seal(**tls) -> TransitSeal:
            return transit_seal(TransitSealConfig(**base, **tls), environ={})

        trusted = seal(tls_ca_cert=str(bao.ca))
        assert trusted.unwrap(trusted.wrap(b"r" * 32, ROOT_KEY_PATH), ROOT_KEY_PATH) == b"r" * 32
        # The certificate names localhost and 127.0.0.1: tls_server_name is the name checked.
        assert seal(tls_ca_cert=str(bao.ca), tls_server_name="localhost").wrap(b"r" * 32, ROOT_KEY_PATH)
        with pytest.raises(StorageUnavailable, match="unreachable"):
            seal(tls_ca_cert=str(bao.ca), tls_server_name="unsealer.example").wrap(b"r" * 32, ROOT_KEY_PATH)
        with pytest.raises(StorageUnavailable, match="unreachable"):
            seal().wrap(b"r" * 32, ROOT_KEY_PATH)  # OpenBao's CA is not among the system's
        assert seal(tls_skip_verify=True).wrap(b"r" * 32, ROOT_KEY_PATH)
        # The environment's CA when the block names none (VAULT_CACERT).
        from_env = transit_seal(TransitSealConfig(**base), environ={"VAULT_CACERT": str(bao.ca)})
        assert from_env.wrap(b"r" * 32, ROOT_KEY_PATH)
