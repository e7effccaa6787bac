"""keys, keys/<name>, keys/<name>/config, rotate and trim: Vault's shapes and messages."""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidRequest
from tests.unit.engines.transit.transit_support import call, ok

START_UNIX = 1704164645  # kv_support.START


def test_create_reads_back_in_vaults_shape(transit):
    created = ok(transit, "update", "keys/k", {})
    assert created == ok(transit, "read", "keys/k")
    assert created == {
        "allow_plaintext_backup": False,
        "auto_rotate_period": 0,
        "deletion_allowed": False,
        "derived": False,
        "exportable": False,
        "imported_key": False,
        "keys": {"1": START_UNIX},
        "latest_version": 1,
        "min_available_version": 0,
        "min_decryption_version": 1,
        "min_encryption_version": 0,
        "name": "k",
        "soft_deleted": False,
        "supports_decryption": True,
        "supports_derivation": True,
        "supports_encryption": True,
        "supports_signing": False,
        "type": "aes256-gcm96",
    }


def test_derived_convergent_key_fields(transit):
    data = ok(transit, "update", "keys/d", {"derived": True, "convergent_encryption": True, "type": "aes128-gcm96"})
    assert data["kdf"] == "hkdf_sha256"
    assert data["convergent_encryption"] is True
    assert data["convergent_encryption_version"] == -1
    assert data["type"] == "aes128-gcm96"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "nope"}, "unknown key type nope"),
        ({"convergent_encryption": True}, "convergent encryption requires derivation to be enabled"),
        ({"auto_rotate_period": "10m"}, "auto rotate period must be 0 to disable or at least an hour"),
    ],
)
def test_create_refusals(transit, body, message):
    with pytest.raises(InvalidRequest, match=message):
        call(transit, "update", "keys/k", body)


def test_create_existing_keeps_the_key(transit):
    ok(transit, "update", "keys/k", {})
    assert ok(transit, "update", "keys/k", {"type": "aes128-gcm96"})["type"] == "aes256-gcm96"


def test_read_and_list_missing(transit):
    assert call(transit, "read", "keys/none") is None
    assert call(transit, "list", "keys") is None
    ok(transit, "update", "keys/b", {})
    ok(transit, "update", "keys/a", {})
    assert ok(transit, "list", "keys") == {"keys": ["a", "b"]}
    assert ok(transit, "list", "keys/") == {"keys": ["a", "b"]}


def test_delete_needs_deletion_allowed(transit):
    with pytest.raises(InvalidRequest, match="could not delete key; not found"):
        call(transit, "delete", "keys/k")
    ok(transit, "update", "keys/k", {})
    with pytest.raises(InvalidRequest, match="error deleting policy k: deletion is not allowed for this key"):
        call(transit, "delete", "keys/k")
    assert ok(transit, "update", "keys/k/config", {"deletion_allowed": True})["deletion_allowed"] is True
    response = call(transit, "delete", "keys/k")
    assert response is not None and response.data is None
    assert call(transit, "read", "keys/k") is None


def test_rotate_config_and_trim(transit, clock):
    ok(transit, "update", "keys/k", {})
    clock.advance(seconds=10)
    rotated = ok(transit, "update", "keys/k/rotate")
    assert rotated["latest_version"] == 2
    assert rotated["keys"] == {"1": START_UNIX, "2": START_UNIX + 10}
    ok(transit, "update", "keys/k/rotate")
    with pytest.raises(InvalidRequest, match="cannot set min decryption version of 9, latest key version is 3"):
        call(transit, "update", "keys/k/config", {"min_decryption_version": 9})
    with pytest.raises(InvalidRequest, match="min encryption version of 2 must be greater than or equal"):
        call(transit, "update", "keys/k/config", {"min_decryption_version": 3, "min_encryption_version": 2})
    with pytest.raises(InvalidRequest, match="cannot be set when minimum encryption version is not set"):
        call(transit, "update", "keys/k/trim", {"min_available_version": 2})
    config = ok(transit, "update", "keys/k/config", {"min_decryption_version": 2, "min_encryption_version": 2})
    assert config["keys"] == {"2": START_UNIX + 10, "3": START_UNIX + 10}
    trimmed = ok(transit, "update", "keys/k/trim", {"min_available_version": 2})
    assert trimmed["min_available_version"] == 2
    assert 1 not in transit.store.get("k").versions
    with pytest.raises(InvalidRequest, match="minimum available version cannot be decremented"):
        call(transit, "update", "keys/k/trim", {"min_available_version": 1})
    with pytest.raises(InvalidRequest, match="missing min_available_version"):
        call(transit, "update", "keys/k/trim", {})
    with pytest.raises(InvalidRequest, match="min decryption version should not be less then min available version"):
        call(transit, "update", "keys/k/config", {"min_decryption_version": 1})


def test_config_zero_min_decryption_is_one_with_warning(transit):
    ok(transit, "update", "keys/k", {})
    response = call(transit, "update", "keys/k/config", {"min_decryption_version": 0})
    assert response is not None and response.data is not None
    assert response.data["min_decryption_version"] == 1
    assert response.warnings


def test_config_exportable_only_turns_on(transit):
    ok(transit, "update", "keys/k", {"exportable": True})
    assert ok(transit, "update", "keys/k/config", {"exportable": False})["exportable"] is True


def test_config_and_rotate_on_missing_key(transit):
    with pytest.raises(InvalidRequest, match="no existing key named none could be found"):
        call(transit, "update", "keys/none/config", {})
    with pytest.raises(InvalidRequest, match="key not found"):
        call(transit, "update", "keys/none/rotate")


def test_existence_checks_as_vault(transit):
    """``keys/<name>`` has none ("update" may create a key); ``encrypt/<name>`` has one
    (creating a key by encrypting needs "create")."""
    from tests.unit.engines.transit.transit_support import request

    assert transit.exists(request("update", "keys/k")) is None
    assert transit.exists(request("update", "encrypt/k")) is False
    ok(transit, "update", "keys/k", {})
    assert transit.exists(request("update", "encrypt/k")) is True
