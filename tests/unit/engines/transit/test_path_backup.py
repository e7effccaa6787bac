"""backup and restore in Vault's format: OpenBao 2.7.2 backups (``openbao_backup_kat.json``)
restore here and keep working (its ciphertexts decrypt, its signatures verify, its
HMACs are reproduced), and Strongroom's backups restore here unchanged."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from strongroom.errors import InvalidRequest
from tests.unit.engines.transit.transit_support import call, ok

KAT = json.loads((Path(__file__).parent / "openbao_backup_kat.json").read_text())
INPUT = "aGVsbG8gdHJhbnNpdA=="


@pytest.mark.parametrize("key_type", sorted(KAT))
def test_openbao_backup_restores(transit, key_type):
    known = KAT[key_type]
    response = call(transit, "update", "restore/r", {"backup": known["backup"]})
    assert response is not None and response.data is None
    key = ok(transit, "read", "keys/r")
    assert key["type"] == key_type and key["latest_version"] == 2
    if "ciphertext_v1" in known:
        for version in ("ciphertext_v1", "ciphertext_v2"):
            assert ok(transit, "update", "decrypt/r", {"ciphertext": known[version]}) == {"plaintext": INPUT}
    else:
        for version in ("signature_v1", "signature_v2"):
            assert ok(transit, "update", "verify/r", {"input": INPUT, "signature": known[version]}) == {"valid": True}
    assert ok(transit, "update", "hmac/r", {"input": INPUT, "key_version": 1}) == {"hmac": known["hmac_v1"]}


@pytest.mark.parametrize("key_type", sorted(KAT))
def test_strongroom_backup_round_trips(transit, key_type):
    ok(transit, "update", "restore/r", {"backup": KAT[key_type]["backup"]})
    ours = ok(transit, "read", "backup/r")["backup"]
    document = json.loads(base64.b64decode(ours))
    assert set(document) == {"policy", "archived_keys"}
    ok(transit, "update", "restore/copy", {"backup": ours})
    assert ok(transit, "read", "export/hmac-key/copy") == {**ok(transit, "read", "export/hmac-key/r"), "name": "copy"}
    # Without a name in the path the backup's own name is used.
    with pytest.raises(InvalidRequest, match='key "r" already exists'):
        call(transit, "update", "restore", {"backup": ours})


def test_restore_refusals(transit):
    with pytest.raises(InvalidRequest, match="'backup' must be supplied"):
        call(transit, "update", "restore/x", {})
    with pytest.raises(InvalidRequest, match="invalid backup"):
        call(transit, "update", "restore/x", {"backup": "e30="})
    backup = KAT["aes256-gcm96"]["backup"]
    ok(transit, "update", "restore/x", {"backup": backup})
    with pytest.raises(InvalidRequest, match='key "x" already exists'):
        call(transit, "update", "restore/x", {"backup": backup})
    ok(transit, "update", "restore/x", {"backup": backup, "force": True})


def test_backup_needs_exportable_and_plaintext_backup(transit):
    ok(transit, "update", "keys/plain", {})
    with pytest.raises(InvalidRequest, match="exporting is disallowed on the policy"):
        call(transit, "read", "backup/plain")
    ok(transit, "update", "keys/exp", {"exportable": True})
    with pytest.raises(InvalidRequest, match="plaintext backup is disallowed on the policy"):
        call(transit, "read", "backup/exp")


def test_derived_keys_round_trip(transit):
    ctx = base64.b64encode(b"c").decode()
    ok(transit, "update", "keys/d", {"type": "ed25519", "derived": True, "exportable": True})
    ok(transit, "update", "keys/d/config", {"allow_plaintext_backup": True})
    signature = ok(transit, "update", "sign/d", {"input": INPUT, "context": ctx})["signature"]
    ok(transit, "update", "restore/d2", {"backup": ok(transit, "read", "backup/d")["backup"]})
    assert ok(transit, "update", "verify/d2", {"input": INPUT, "signature": signature, "context": ctx}) == {
        "valid": True
    }
    body = {"derived": True, "convergent_encryption": True, "exportable": True, "allow_plaintext_backup": True}
    ok(transit, "update", "keys/c", body)
    ciphertext = ok(transit, "update", "encrypt/c", {"plaintext": INPUT, "context": ctx})["ciphertext"]
    ok(transit, "update", "restore/c2", {"backup": ok(transit, "read", "backup/c")["backup"]})
    assert ok(transit, "update", "encrypt/c2", {"plaintext": INPUT, "context": ctx})["ciphertext"] == ciphertext
