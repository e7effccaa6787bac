"""Transit keys move between OpenBao and Strongroom in both directions through
Vault's backup format, and keep working: a real ``bao server -dev`` and a real
``strongroom server -dev``, each with its own transit mount."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

pytestmark = pytest.mark.openbao

ROOT = {"X-Vault-Token": "root"}
MOUNT = "transit-interop"
TYPES = ["aes256-gcm96", "aes128-gcm96", "chacha20-poly1305", "ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048"]
INPUT = "aGVsbG8gdHJhbnNpdA=="


def post(url: str, path: str, body: dict) -> dict:
    response = requests.post(f"{url}/v1/{MOUNT}/{path}", headers=ROOT, json=body, timeout=30)
    assert response.status_code in (200, 204), (path, response.status_code, response.text)
    return response.json()["data"] if response.status_code == 200 else {}


@pytest.fixture(scope="module")
def urls(openbao_dev_server, strongroom_dev_server) -> Iterator[dict[str, str]]:
    found = {"openbao": openbao_dev_server.url, "strongroom": strongroom_dev_server.url}
    for url in found.values():
        requests.post(f"{url}/v1/sys/mounts/{MOUNT}", headers=ROOT, json={"type": "transit"}, timeout=10)
    yield found
    for url in found.values():
        requests.delete(f"{url}/v1/sys/mounts/{MOUNT}", headers=ROOT, timeout=10)


@pytest.mark.parametrize("key_type", TYPES)
@pytest.mark.parametrize(("source", "target"), [("openbao", "strongroom"), ("strongroom", "openbao")])
def test_backup_restores_on_the_other_server(urls, source, target, key_type):
    name = f"{source}-{key_type}"
    src, dst = urls[source], urls[target]
    post(src, f"keys/{name}", {"type": key_type, "exportable": True, "allow_plaintext_backup": True})
    post(src, f"keys/{name}/rotate", {})
    backup = requests.get(f"{src}/v1/{MOUNT}/backup/{name}", headers=ROOT, timeout=10).json()["data"]["backup"]
    post(dst, f"restore/{name}", {"backup": backup})
    if key_type in ("ed25519",) or key_type.startswith(("ecdsa", "rsa")):
        signature = post(src, f"sign/{name}", {"input": INPUT})["signature"]
        assert post(dst, f"verify/{name}", {"input": INPUT, "signature": signature}) == {"valid": True}
        mine = post(dst, f"sign/{name}", {"input": INPUT, "key_version": 1})["signature"]
        assert post(src, f"verify/{name}", {"input": INPUT, "signature": mine}) == {"valid": True}
    if not key_type.startswith(("ed", "ecdsa")):
        ciphertext = post(src, f"encrypt/{name}", {"plaintext": INPUT})["ciphertext"]
        assert post(dst, f"decrypt/{name}", {"ciphertext": ciphertext}) == {"plaintext": INPUT}
        back = post(dst, f"encrypt/{name}", {"plaintext": INPUT, "key_version": 1})["ciphertext"]
        assert post(src, f"decrypt/{name}", {"ciphertext": back}) == {"plaintext": INPUT}
    assert post(src, f"hmac/{name}", {"input": INPUT}) == post(dst, f"hmac/{name}", {"input": INPUT})


@pytest.mark.parametrize(("source", "target"), [("openbao", "strongroom"), ("strongroom", "openbao")])
def test_derived_keys_move_between_servers(urls, source, target):
    src, dst = urls[source], urls[target]
    context = "dGVuYW50LTE="
    options = {"derived": True, "exportable": True, "allow_plaintext_backup": True}
    post(src, f"keys/conv-{source}", {**options, "convergent_encryption": True})
    post(src, f"keys/ded-{source}", {**options, "type": "ed25519"})
    for name in (f"conv-{source}", f"ded-{source}"):
        backup = requests.get(f"{src}/v1/{MOUNT}/backup/{name}", headers=ROOT, timeout=10).json()["data"]["backup"]
        post(dst, f"restore/{name}", {"backup": backup})
    # Convergent encryption is deterministic: both servers produce the same ciphertext.
    body = {"plaintext": INPUT, "context": context}
    assert post(src, f"encrypt/conv-{source}", body) == post(dst, f"encrypt/conv-{source}", body)
    # ed25519 is deterministic too: the same derived key gives the same signature.
    body = {"input": INPUT, "context": context}
    assert post(src, f"sign/ded-{source}", body) == post(dst, f"sign/ded-{source}", body)
