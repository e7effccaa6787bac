"""Known answers from OpenBao 2.7.2 (``bao server -dev``): keys exported with
``export/encryption-key`` and ``export/hmac-key``, and the ciphertexts and
HMACs OpenBao made with them.  Strongroom must open OpenBao's ciphertexts,
produce byte-identical convergent ciphertexts and HMACs, and its own
ciphertexts must open with ``cryptography`` directly."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from tests.unit.engines.transit.transit_support import b64, install, ok

PLAINTEXT = b"hello transit"
CONTEXT = b"tenant-1"

# type: (exported key, OpenBao ciphertext of PLAINTEXT)
RANDOM_NONCE = {
    "aes256-gcm96": (
        "RyLIHiQzEXyikuArkckxDtiELd7SfqSt0m4Lgy7da/g=",
        "vault:v1:dsqdG9OJaqBqSm7infYrfn9pmI8TI1HLFw6qrAF7NbyxcAZHghtwg/4=",
    ),
    "aes128-gcm96": (
        "bEkOBUNTuxlCSeH1bpcXmg==",
        "vault:v1:dXjo+SgI5x5L3OWo4lHLL4vhN3okERaZQN9Kw8FXgqB0t4YJXctShJE=",
    ),
    "chacha20-poly1305": (
        "WfQbWxXhOIsDcun02Itd+EeGfz9v1r9ZPtKW1VwSTNo=",
        "vault:v1:wTZpCoJ8NS56RHroPx0GdtnRu97dkKFSHoq51M14HsjJuZhjItEq+jo=",
    ),
}
# type: (exported key of a derived convergent key, OpenBao ciphertext of PLAINTEXT with CONTEXT)
CONVERGENT = {
    "aes256-gcm96": (
        "lwrgChSdkv098NWnFm4NYU4eXB6S37hAvUaAmdXQ7No=",
        "vault:v1:kRnkZWgt7kiuwTxluyBgqxN2GGRi1MIrhGdd39BN0OT78LpV+KE0OJs=",
    ),
    "aes128-gcm96": (
        "J4XQdfVdDqlo+cfHCt705Q==",
        "vault:v1:QwdGXoTQP8e/PVKRJoLK0ygfL0AuI9BMMOkbhFNFunktsvzQ2ePmcNY=",
    ),
    "chacha20-poly1305": (
        "4xdpVVC+bUPV+oQIE1/baAEk9KbdBWzIt2/i73+znas=",
        "vault:v1:eoITHLSihvtGsQ+fyRiUV8YAZ3wSfwsJT0Y5dHV8AyIbeEURiau3jgQ=",
    ),
}
# The same convergent aes256 key with associated_data "ad".
CONVERGENT_AD = "vault:v1:kRnkZWgt7kiuwTxluyBgqxN2GGRi1MIrhCOAwo3kZ579dMgPRVJJMS4="
HMAC_KEY = "9L5f9kppc7AUyKgd575RIv5mdI5aG9cxh6lQ9ItfAUI="
HMAC_SHA256 = "vault:v1:1T8wD+mM79EB5mdKSTsrhf/oGWJarvGk9OXdeTNol80="
HMAC_SHA512 = "vault:v1:bC0bWisX4SfkWAJ/O4zmIiWdW6gJ3TVzOdTNToolCpjYv37E9zwSBeQsfC/15gS+zsVEAv9ahEQEgxc5RcTGvA=="


@pytest.mark.parametrize("key_type", sorted(RANDOM_NONCE))
def test_openbao_ciphertext_decrypts(transit, key_type):
    key, ciphertext = RANDOM_NONCE[key_type]
    install(transit, "k", key_type, key)
    assert ok(transit, "update", "decrypt/k", {"ciphertext": ciphertext}) == {"plaintext": b64(PLAINTEXT)}


@pytest.mark.parametrize("key_type", sorted(RANDOM_NONCE))
def test_strongroom_ciphertext_opens_with_cryptography(transit, key_type):
    key, _ = RANDOM_NONCE[key_type]
    install(transit, "k", key_type, key)
    out = ok(transit, "update", "encrypt/k", {"plaintext": b64(PLAINTEXT)})
    assert out["key_version"] == 1
    prefix, version, payload = out["ciphertext"].split(":")
    assert (prefix, version) == ("vault", "v1")
    raw = base64.b64decode(payload)
    aead = ChaCha20Poly1305 if key_type == "chacha20-poly1305" else AESGCM
    # Vault's layout: 12-byte nonce, then ciphertext and 16-byte tag.
    assert len(raw) == 12 + len(PLAINTEXT) + 16
    assert aead(base64.b64decode(key)).decrypt(raw[:12], raw[12:], None) == PLAINTEXT


@pytest.mark.parametrize("key_type", sorted(CONVERGENT))
def test_convergent_derived_ciphertext_is_byte_identical(transit, key_type):
    key, expected = CONVERGENT[key_type]
    install(transit, "c", key_type, key, derived=True, convergent=True)
    out = ok(transit, "update", "encrypt/c", {"plaintext": b64(PLAINTEXT), "context": b64(CONTEXT)})
    assert out["ciphertext"] == expected
    assert ok(transit, "update", "decrypt/c", {"ciphertext": expected, "context": b64(CONTEXT)}) == {
        "plaintext": b64(PLAINTEXT)
    }


def test_convergent_with_associated_data(transit):
    key, _ = CONVERGENT["aes256-gcm96"]
    install(transit, "c", "aes256-gcm96", key, derived=True, convergent=True)
    data = {"plaintext": b64(PLAINTEXT), "context": b64(CONTEXT), "associated_data": b64(b"ad")}
    assert ok(transit, "update", "encrypt/c", data)["ciphertext"] == CONVERGENT_AD


def test_hmac_matches_openbao(transit):
    install(transit, "h", "aes256-gcm96", RANDOM_NONCE["aes256-gcm96"][0], hmac_b64=HMAC_KEY)
    assert ok(transit, "update", "hmac/h", {"input": b64(PLAINTEXT)}) == {"hmac": HMAC_SHA256}
    assert ok(transit, "update", "hmac/h/sha2-512", {"input": b64(PLAINTEXT)}) == {"hmac": HMAC_SHA512}
    assert ok(transit, "update", "verify/h/sha2-512", {"input": b64(PLAINTEXT), "hmac": HMAC_SHA512}) == {"valid": True}
