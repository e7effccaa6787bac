"""The request sequence both servers receive, in order, and how it is sent.

Each ``Case`` is one HTTP request.  Later cases use values earlier responses
returned (tokens, accessors) by reference: ``save`` names a dotted path in a
response body, and ``<<name>>`` anywhere in a path, token or body is replaced
by the value saved under that name *on the same server*.  ``token=None``
sends no token; the default is the dev root token.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import requests

ROOT = "root"

TOKENS_POLICY = """
path "auth/token/create" { capabilities = ["update"] }
path "secret/data/allowed" { capabilities = ["read"] }
"""
READER_POLICY = 'path "secret/data/allowed" { capabilities = ["read", "list"] }\n'
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
ROLE_USER_POLICY = 'path "auth/token/create/app" { capabilities = ["update"] }\n'


@dataclass(frozen=True)
class Case:
    """One request of the sequence; ``name`` is unique and is the test id."""

    name: str
    method: str
    path: str
    body: Any = None  # JSON value; bytes sent as they are; tuple of bytes sent chunked
    token: str | None = ROOT
    save: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What a server answered: status, decoded JSON body (None when empty or not JSON)."""

    status: int
    body: Any
    text: str


C = Case
CASES: list[Case] = [
    # --- seal, health, leader, keyring -------------------------------------------
    C("init status", "GET", "sys/init", token=None),
    C("seal status", "GET", "sys/seal-status", token=None),
    C("health", "GET", "sys/health", token=None),
    C("health head", "HEAD", "sys/health", token=None),
    C("health custom active code", "GET", "sys/health?activecode=299&standbyok=true", token=None),
    C("leader", "GET", "sys/leader", token=None),
    C("key status", "GET", "sys/key-status"),
    C("rotate", "POST", "sys/rotate"),
    C("key status after rotate", "GET", "sys/key-status"),
    C("init again", "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, token=None),
    C("unseal reset while unsealed", "PUT", "sys/unseal", {"reset": True}, token=None),
    C("rotate without token", "POST", "sys/rotate", token=None),
    C("rotate via GET", "GET", "sys/rotate"),
    C("health bad sealedcode", "GET", "sys/health?sealedcode=abc", token=None),
    C("health activecode with a space", "GET", "sys/health?activecode=%20200", token=None),
    C("health activecode hex", "GET", "sys/health?activecode=0x100", token=None),
    C("health activecode informational", "GET", "sys/health?activecode=100", token=None),
    C("health standbycode informational", "GET", "sys/health?standbycode=100", token=None),
    C("health perfstandbyok with standbycode", "GET", "sys/health?perfstandbyok=true&standbycode=200", token=None),
    C("init malformed json", "PUT", "sys/init", b"{bad", token=None),
    # --- mounts --------------------------------------------------------------------
    C("enable kv v1", "POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}, "description": "v1"}),
    C("enable kv-v2", "POST", "sys/mounts/kv2", {"type": "kv-v2"}),
    C("enable on used path", "POST", "sys/mounts/kv1", {"type": "kv"}),
    C("enable unknown type", "POST", "sys/mounts/bad", {"type": "no-such-engine"}),
    C("enable missing type", "POST", "sys/mounts/bad", {}),
    C("enable reserved path", "POST", "sys/mounts/sys", {"type": "kv"}),
    C("list mounts", "GET", "sys/mounts"),
    C("read mount", "GET", "sys/mounts/kv2"),
    C("read mount tune", "GET", "sys/mounts/kv2/tune"),
    C(
        "tune mount",
        "POST",
        "sys/mounts/kv2/tune",
        {"default_lease_ttl": "1h", "max_lease_ttl": "2h", "description": "tuned"},
    ),
    C("read mount tune after tune", "GET", "sys/mounts/kv2/tune"),
    C("tune bad ttl", "POST", "sys/mounts/kv2/tune", {"default_lease_ttl": "forever"}),
    # Hostile numbers: refused with OpenBao's message and shape, nothing stored.
    C("tune ttl exponent number", "POST", "sys/mounts/kv2/tune", b'{"default_lease_ttl": 1e30}'),
    C("tune ttl exponent string", "POST", "sys/mounts/kv2/tune", {"default_lease_ttl": "1e30"}),
    C("tune ttl NaN string", "POST", "sys/mounts/kv2/tune", {"max_lease_ttl": "NaN"}),
    C("tune ttl Infinity string", "POST", "sys/mounts/kv2/tune", {"default_lease_ttl": "Infinity"}),
    C("tune ttl 1e999 string", "POST", "sys/mounts/kv2/tune", {"default_lease_ttl": "1e999"}),
    C("tune ttl fraction", "POST", "sys/mounts/kv2/tune", b'{"default_lease_ttl": 1.5}'),
    C("tune ttl beyond go duration seconds", "POST", "sys/mounts/kv2/tune", {"max_lease_ttl": 9223372037}),
    C("tune ttl beyond go duration days", "POST", "sys/mounts/kv2/tune", {"max_lease_ttl": "106752d"}),
    C("tune ttl beyond go duration hours", "POST", "sys/mounts/kv2/tune", {"max_lease_ttl": "2562048h"}),
    C("tune ttl list", "POST", "sys/mounts/kv2/tune", {"default_lease_ttl": [1]}),
    C("tune max below default", "POST", "sys/mounts/kv2/tune", {"default_lease_ttl": "3h", "max_lease_ttl": "2h"}),
    C("tune bad listing_visibility", "POST", "sys/mounts/kv2/tune", {"listing_visibility": "bogus"}),
    C("tune auth ttl exponent", "POST", "sys/auth/token/tune", {"default_lease_ttl": "1e30"}),
    C("read mount tune after refused tunes", "GET", "sys/mounts/kv2/tune"),
    C("enable with ttl exponent", "POST", "sys/mounts/hostile1", {"type": "kv", "config": {"default_lease_ttl": 1e30}}),
    C(
        "enable with ttl beyond go duration",
        "POST",
        "sys/mounts/hostile2",
        {"type": "kv", "config": {"max_lease_ttl": "9223372037s"}},
    ),
    C(
        "enable with default above max",
        "POST",
        "sys/mounts/hostile3",
        {"type": "kv", "config": {"default_lease_ttl": "2h", "max_lease_ttl": "1h"}},
    ),
    C(
        "enable with ttl a boolean",
        "POST",
        "sys/mounts/hostile4",
        {"type": "kv", "config": {"default_lease_ttl": True}},
    ),
    C("enable with config a string", "POST", "sys/mounts/hostile5", {"type": "kv", "config": "str"}),
    C("tune missing mount", "GET", "sys/mounts/nope/tune"),
    C("enable tmp mount", "POST", "sys/mounts/tmp", {"type": "kv"}),
    C("tune negative ttl", "POST", "sys/mounts/tmp/tune", {"default_lease_ttl": -1}),
    C("disable mount", "DELETE", "sys/mounts/tmp"),
    C("disable missing mount", "DELETE", "sys/mounts/never-mounted"),
    C("list auth methods", "GET", "sys/auth"),
    C("tune kv-v2 down to v1", "POST", "sys/mounts/kv2/tune", {"options": {"version": "1"}}),
    C("ui mount lookup", "GET", "sys/internal/ui/mounts/kv2"),
    C("ui mount lookup unmounted", "GET", "sys/internal/ui/mounts/nope"),
    # --- policies ------------------------------------------------------------------
    C("write policy (sys/policy)", "PUT", "sys/policy/reader", {"policy": READER_POLICY}),
    C("read policy (sys/policy)", "GET", "sys/policy/reader"),
    C("list policies (sys/policy)", "GET", "sys/policy"),
    C("write acl policy", "PUT", "sys/policies/acl/tokens", {"policy": TOKENS_POLICY}),
    C("read acl policy", "GET", "sys/policies/acl/tokens"),
    C("list acl policies", "LIST", "sys/policies/acl"),
    C("acl policy bad hcl", "PUT", "sys/policies/acl/bad", {"policy": 'path "x" { capabilities = '}),
    C("acl policy missing body", "PUT", "sys/policies/acl/bad", {}),
    C("read missing acl policy", "GET", "sys/policies/acl/missing"),
    C("update root policy", "PUT", "sys/policies/acl/root", {"policy": READER_POLICY}),
    C("write temp acl policy", "PUT", "sys/policies/acl/temp", {"policy": READER_POLICY}),
    C("delete acl policy", "DELETE", "sys/policies/acl/temp"),
    C("delete default policy", "DELETE", "sys/policies/acl/default"),
    C("capabilities-self", "POST", "sys/capabilities-self", {"paths": ["secret/data/allowed"]}),
    C("capabilities for token", "POST", "sys/capabilities", {"token": "root", "paths": ["secret/data/x"]}),
    # --- audit ---------------------------------------------------------------------
    C("enable file audit", "PUT", "sys/audit/file", {"type": "file", "options": {"file_path": "<<audit_path>>"}}),
    C("list audit devices", "GET", "sys/audit"),
    C("audit hash", "POST", "sys/audit-hash/file", {"input": "hunter2"}),
    C(
        "enable audit on used path",
        "PUT",
        "sys/audit/file",
        {"type": "file", "options": {"file_path": "<<audit_path>>"}},
    ),
    C("audit hash unknown device", "POST", "sys/audit-hash/nope", {"input": "x"}),
    C("enable audit unknown type", "PUT", "sys/audit/bad", {"type": "no-such-device"}),
    C("disable audit", "DELETE", "sys/audit/file"),
    C("disable unknown audit device", "DELETE", "sys/audit/nope"),
    # --- KV v2 at secret/ ----------------------------------------------------------
    C("kv2 write", "POST", "secret/data/app", {"data": {"password": "p1"}}),
    C("kv2 write with cas", "POST", "secret/data/app", {"data": {"password": "p2"}, "options": {"cas": 1}}),
    C("kv2 cas mismatch", "POST", "secret/data/app", {"data": {"password": "p3"}, "options": {"cas": 1}}),
    C("kv2 read", "GET", "secret/data/app"),
    C("kv2 read version", "GET", "secret/data/app?version=1"),
    C("kv2 read future version", "GET", "secret/data/app?version=99"),
    C("kv2 read version not a number", "GET", "secret/data/app?version=abc"),
    C("kv2 read version exponent", "GET", "secret/data/app?version=1e30"),
    C("kv2 read version beyond int64", "GET", "secret/data/app?version=99999999999999999999"),
    C("kv2 read version NaN", "GET", "secret/data/app?version=NaN"),
    C("kv2 read version negative", "GET", "secret/data/app?version=-1"),
    C("kv2 cas exponent", "POST", "secret/data/app", {"data": {"a": "b"}, "options": {"cas": 1e30}}),
    C("kv2 cas beyond int64", "POST", "secret/data/app", {"data": {"a": "b"}, "options": {"cas": 10**20}}),
    C("kv2 cas not a number", "POST", "secret/data/app", {"data": {"a": "b"}, "options": {"cas": "x"}}),
    C("kv2 patch", "PATCH", "secret/data/app", {"data": {"user": "u"}}, headers=MERGE_PATCH),
    C("kv2 patch missing secret", "PATCH", "secret/data/none", {"data": {"user": "u"}}, headers=MERGE_PATCH),
    C("kv2 write second secret", "POST", "secret/data/other", {"data": {"a": "b"}}),
    C(
        "kv2 patch as application/json",
        "PATCH",
        "secret/data/other",
        {"data": {"user": "v"}},
        headers={"Content-Type": "application/json"},
    ),
    C("kv2 list on data path", "LIST", "secret/data/"),
    C("kv2 read mount root", "GET", "secret/"),
    C("kv2 list", "LIST", "secret/metadata/"),
    C("kv2 list missing folder", "LIST", "secret/metadata/none/"),
    C("kv2 read metadata", "GET", "secret/metadata/app"),
    C(
        "kv2 update metadata",
        "POST",
        "secret/metadata/app",
        {"max_versions": 5, "cas_required": False, "delete_version_after": "1h", "custom_metadata": {"owner": "ops"}},
    ),
    C("kv2 read metadata after update", "GET", "secret/metadata/app"),
    C("kv2 metadata bad max_versions", "POST", "secret/metadata/app", {"max_versions": "many"}),
    C("kv2 metadata negative delete_version_after", "POST", "secret/metadata/app", {"delete_version_after": "-1h"}),
    C("kv2 metadata max_versions exponent", "POST", "secret/metadata/app", {"max_versions": 1e30}),
    C("kv2 metadata max_versions beyond int64", "POST", "secret/metadata/app", {"max_versions": 10**30}),
    C("kv2 metadata delete_version_after exponent", "POST", "secret/metadata/app", {"delete_version_after": 1e30}),
    C(
        "kv2 metadata delete_version_after beyond go duration",
        "POST",
        "secret/metadata/app",
        {"delete_version_after": "106752d"},
    ),
    C("kv2 metadata cas_required 2", "POST", "secret/metadata/app", {"cas_required": 2}),
    C("kv2 read metadata missing", "GET", "secret/metadata/missing"),
    C("kv2 soft delete version", "POST", "secret/delete/app", {"versions": [1]}),
    C("kv2 read deleted version", "GET", "secret/data/app?version=1"),
    C("kv2 undelete version", "POST", "secret/undelete/app", {"versions": [1]}),
    C("kv2 read undeleted version", "GET", "secret/data/app?version=1"),
    C("kv2 undelete without versions", "POST", "secret/undelete/app", {}),
    C("kv2 destroy missing secret", "POST", "secret/destroy/nothing", {"versions": [1]}),
    C("kv2 destroy version", "PUT", "secret/destroy/app", {"versions": [2]}),
    C("kv2 read destroyed version", "GET", "secret/data/app?version=2"),
    C("kv2 delete without versions", "POST", "secret/delete/app", {}),
    C("kv2 delete latest", "DELETE", "secret/data/app"),
    C("kv2 read deleted latest", "GET", "secret/data/app"),
    C("kv2 subkeys", "GET", "secret/subkeys/app?version=1"),
    C("kv2 subkeys depth", "GET", "secret/subkeys/app?version=1&depth=1"),
    C("kv2 data not an object", "POST", "secret/data/bad", {"data": "not-a-map"}),
    C("kv2 write without data", "POST", "secret/data/bad", {}),
    C("kv2 read missing", "GET", "secret/data/missing"),
    C("kv2 cas required on metadata", "POST", "secret/metadata/strict", {"cas_required": True}),
    C("kv2 write without cas when required", "POST", "secret/data/strict", {"data": {"a": "b"}}),
    C(
        "kv2 configure",
        "POST",
        "secret/config",
        {"max_versions": 10, "cas_required": False, "delete_version_after": "0s"},
    ),
    C("kv2 read config", "GET", "secret/config"),
    C("kv2 configure bad max_versions", "POST", "secret/config", {"max_versions": "many"}),
    C("kv2 configure max_versions exponent", "POST", "secret/config", {"max_versions": "1e30"}),
    C("kv2 configure max_versions beyond int64", "POST", "secret/config", {"max_versions": 10**30}),
    C("kv2 configure max_versions beyond uint32", "POST", "secret/config", {"max_versions": 2**32}),
    C("kv2 configure delete_version_after NaN", "POST", "secret/config", {"delete_version_after": "NaN"}),
    C("kv2 destroy versions beyond int64", "POST", "secret/destroy/app", {"versions": [10**20]}),
    C("kv2 delete versions exponent", "POST", "secret/delete/app", {"versions": [1e30]}),
    C("kv2 read config after refused writes", "GET", "secret/config"),
    C("kv2 delete metadata", "DELETE", "secret/metadata/app"),
    C("kv2 read metadata after delete", "GET", "secret/metadata/app"),
    # --- KV v1 at kv1/ -------------------------------------------------------------
    C("kv1 write", "POST", "kv1/app", {"user": "u", "password": "p"}),
    C("kv1 read", "GET", "kv1/app"),
    C("kv1 list", "LIST", "kv1/"),
    C("kv1 list via query", "GET", "kv1/?list=true"),
    C("kv1 list missing folder", "LIST", "kv1/none/"),
    C("kv1 delete", "DELETE", "kv1/app"),
    C("kv1 read deleted", "GET", "kv1/app"),
    # --- transit at transit/ -----------------------------------------------------------
    C("transit mount", "POST", "sys/mounts/transit", {"type": "transit"}),
    C("transit create key", "POST", "transit/keys/k1", {"exportable": True}),
    C("transit create existing key", "POST", "transit/keys/k1", {}),
    C("transit create aes128 key", "POST", "transit/keys/k128", {"type": "aes128-gcm96"}),
    C("transit create chacha key", "POST", "transit/keys/kcc", {"type": "chacha20-poly1305"}),
    C(
        "transit create convergent key",
        "POST",
        "transit/keys/kconv",
        {"derived": True, "convergent_encryption": True},
    ),
    C("transit create unknown type", "POST", "transit/keys/bad", {"type": "nope"}),
    C("transit create convergent underived", "POST", "transit/keys/bad", {"convergent_encryption": True}),
    C("transit read key", "GET", "transit/keys/k1"),
    C("transit read convergent key", "GET", "transit/keys/kconv"),
    C("transit read missing key", "GET", "transit/keys/nothere"),
    C("transit list keys", "LIST", "transit/keys"),
    C(
        "transit encrypt",
        "POST",
        "transit/encrypt/k1",
        {"plaintext": "aGVsbG8="},
        save={"transit_ct": "data.ciphertext"},
    ),
    C("transit encrypt missing plaintext", "POST", "transit/encrypt/k1", {}),
    C("transit encrypt bad base64", "POST", "transit/encrypt/k1", {"plaintext": "!!"}),
    C("transit encrypt derived without context", "POST", "transit/encrypt/kconv", {"plaintext": "aGk="}),
    C("transit encrypt derived", "POST", "transit/encrypt/kconv", {"plaintext": "aGk=", "context": "Yw=="}),
    C("transit encrypt upserts key", "POST", "transit/encrypt/upserted", {"plaintext": "aGk="}),
    C(
        "transit encrypt batch with error",
        "POST",
        "transit/encrypt/k1",
        {"batch_input": [{"plaintext": "aGk="}, {"plaintext": "!!"}]},
    ),
    C(
        "transit encrypt batch",
        "POST",
        "transit/encrypt/k128",
        {"batch_input": [{"plaintext": "aGk=", "reference": "r"}]},
    ),
    C("transit decrypt", "POST", "transit/decrypt/k1", {"ciphertext": "<<transit_ct>>"}),
    C(
        "transit decrypt batch with error",
        "POST",
        "transit/decrypt/k1",
        {"batch_input": [{"ciphertext": "<<transit_ct>>"}, {"ciphertext": "x"}]},
    ),
    C("transit decrypt missing key", "POST", "transit/decrypt/nothere", {"ciphertext": "vault:v1:aaaa"}),
    C("transit decrypt no prefix", "POST", "transit/decrypt/k1", {"ciphertext": "x"}),
    C("transit decrypt too new", "POST", "transit/decrypt/k1", {"ciphertext": "vault:v9:aaaa"}),
    C("transit rotate", "POST", "transit/keys/k1/rotate"),
    C("transit rotate missing key", "POST", "transit/keys/nothere/rotate"),
    C("transit rewrap", "POST", "transit/rewrap/k1", {"ciphertext": "<<transit_ct>>"}),
    C("transit config", "POST", "transit/keys/k1/config", {"min_decryption_version": 2, "min_encryption_version": 2}),
    C("transit config too high", "POST", "transit/keys/k1/config", {"min_decryption_version": 9}),
    C("transit config missing key", "POST", "transit/keys/nothere/config", {}),
    C("transit decrypt too old", "POST", "transit/decrypt/k1", {"ciphertext": "<<transit_ct>>"}),
    C("transit trim", "POST", "transit/keys/k1/trim", {"min_available_version": 2}),
    C("transit trim decrement", "POST", "transit/keys/k1/trim", {"min_available_version": 1}),
    C("transit datakey plaintext", "POST", "transit/datakey/plaintext/k1", {}),
    C("transit datakey wrapped", "POST", "transit/datakey/wrapped/k1", {"bits": 512}),
    C("transit datakey bad type", "POST", "transit/datakey/foo/k1", {}),
    C("transit hmac", "POST", "transit/hmac/k1", {"input": "aGk="}, save={"transit_hmac": "data.hmac"}),
    C("transit hmac sha512 batch", "POST", "transit/hmac/k1/sha2-512", {"batch_input": [{"input": "aGk="}, {}]}),
    C("transit verify hmac", "POST", "transit/verify/k1", {"input": "aGk=", "hmac": "<<transit_hmac>>"}),
    C("transit verify nothing", "POST", "transit/verify/k1", {"input": "aGk="}),
    C("transit hash", "POST", "transit/hash/sha2-512", {"input": "aGk=", "format": "base64"}),
    C("transit hash missing input", "POST", "transit/hash", {}),
    C("transit random", "POST", "transit/random/16", {"format": "hex"}),
    C("transit random too many", "POST", "transit/random/999999", {}),
    C("transit export", "GET", "transit/export/encryption-key/k1"),
    C("transit export hmac latest", "GET", "transit/export/hmac-key/k1/latest"),
    C("transit export not exportable", "GET", "transit/export/encryption-key/k128"),
    C("transit export missing key", "GET", "transit/export/encryption-key/nothere"),
    C("transit create ed25519 key", "POST", "transit/keys/ked", {"type": "ed25519", "exportable": True}),
    C("transit create ecdsa key", "POST", "transit/keys/kec", {"type": "ecdsa-p256"}),
    C("transit create rsa key", "POST", "transit/keys/krsa", {"type": "rsa-2048"}),
    C("transit create derived ecdsa", "POST", "transit/keys/bad", {"type": "ecdsa-p384", "derived": True}),
    C("transit read ed25519 key", "GET", "transit/keys/ked"),
    C("transit read ecdsa key", "GET", "transit/keys/kec"),
    C("transit read rsa key", "GET", "transit/keys/krsa"),
    C("transit sign ed25519", "POST", "transit/sign/ked", {"input": "aGk="}, save={"transit_sig": "data.signature"}),
    C("transit verify ed25519", "POST", "transit/verify/ked", {"input": "aGk=", "signature": "<<transit_sig>>"}),
    C(
        "transit verify ed25519 wrong input",
        "POST",
        "transit/verify/ked",
        {"input": "aGo=", "signature": "<<transit_sig>>"},
    ),
    C("transit sign ecdsa jws", "POST", "transit/sign/kec/sha2-384", {"input": "aGk=", "marshaling_algorithm": "jws"}),
    C("transit sign rsa pkcs1v15", "POST", "transit/sign/krsa", {"input": "aGk=", "signature_algorithm": "pkcs1v15"}),
    C("transit sign batch", "POST", "transit/sign/kec", {"batch_input": [{"input": "aGk="}, {"input": "aGo="}]}),
    C("transit sign symmetric key", "POST", "transit/sign/k1", {"input": "aGk="}),
    C("transit sign missing key", "POST", "transit/sign/nothere", {"input": "aGk="}),
    C("transit encrypt ed25519", "POST", "transit/encrypt/ked", {"plaintext": "aGk="}),
    C("transit encrypt rsa", "POST", "transit/encrypt/krsa", {"plaintext": "aGk="}),
    C("transit export signing key", "GET", "transit/export/signing-key/ked"),
    C("transit export public key", "GET", "transit/export/public-key/kec"),
    C("transit export public key of symmetric", "GET", "transit/export/public-key/k1"),
    C(
        "transit policy for update only",
        "PUT",
        "sys/policy/transit-update",
        {
            "policy": 'path "transit/keys/*" { capabilities = ["update"] }\n'
            'path "transit/encrypt/*" { capabilities = ["update"] }\n'
        },
    ),
    C(
        "transit update-only token",
        "POST",
        "auth/token/create",
        {"policies": ["transit-update"]},
        save={"transit_updater": "auth.client_token"},
    ),
    C("transit create key with update", "POST", "transit/keys/kupd", {}, token="<<transit_updater>>"),
    C(
        "transit encrypt upsert needs create",
        "POST",
        "transit/encrypt/kupd2",
        {"plaintext": "aGk="},
        token="<<transit_updater>>",
    ),
    C(
        "transit encrypt existing with update",
        "POST",
        "transit/encrypt/kupd",
        {"plaintext": "aGk="},
        token="<<transit_updater>>",
    ),
    C("transit create derived ed25519", "POST", "transit/keys/kdered", {"type": "ed25519", "derived": True}),
    C("transit sign derived ed25519", "POST", "transit/sign/kdered", {"input": "aGk=", "context": "Yw=="}),
    C("transit read derived ed25519 with context", "GET", "transit/keys/kdered?context=Yw=="),
    C("transit delete not allowed", "DELETE", "transit/keys/k128"),
    C("transit allow deletion", "POST", "transit/keys/k128/config", {"deletion_allowed": True}),
    C("transit delete", "DELETE", "transit/keys/k128"),
    C("transit delete missing key", "DELETE", "transit/keys/k128"),
    # --- tokens ----------------------------------------------------------------------
    C(
        "token create",
        "POST",
        "auth/token/create",
        {
            "policies": ["tokens"],
            "ttl": "1h",
            "explicit_max_ttl": "2h",
            "renewable": True,
            "display_name": "app",
            "meta": {"team": "ops"},
        },
        save={"parent": "auth.client_token", "parent_accessor": "auth.accessor"},
    ),
    C(
        "token create child",
        "POST",
        "auth/token/create",
        {"policies": ["tokens"], "ttl": "30m"},
        token="<<parent>>",
        save={"child": "auth.client_token", "child_accessor": "auth.accessor"},
    ),
    C(
        "token create child with foreign policy",
        "POST",
        "auth/token/create",
        {"policies": ["reader"]},
        token="<<parent>>",
    ),
    C(
        "token create orphan",
        "POST",
        "auth/token/create-orphan",
        {"policies": ["reader"], "ttl": "1h"},
        save={"orphan": "auth.client_token"},
    ),
    C(
        "token create no_parent",
        "POST",
        "auth/token/create",
        {"policies": ["reader"], "no_parent": True},
        save={"self_revoker": "auth.client_token"},
    ),
    C(
        "token create num_uses",
        "POST",
        "auth/token/create",
        {"policies": ["reader"], "num_uses": 2},
        save={"limited": "auth.client_token"},
    ),
    C("token create bad ttl", "POST", "auth/token/create", {"ttl": "soon"}),
    C("token create bad num_uses", "POST", "auth/token/create", {"num_uses": "many"}),
    C("token create negative num_uses", "POST", "auth/token/create", {"num_uses": -1}),
    C("token create meta not a map", "POST", "auth/token/create", {"meta": "x"}),
    C("token create renewable not a bool", "POST", "auth/token/create", {"renewable": "yes"}),
    C("token create ttl exponent", "POST", "auth/token/create", {"ttl": 1e30}),
    C("token create ttl NaN", "POST", "auth/token/create", {"ttl": "NaN"}),
    C("token create ttl fraction", "POST", "auth/token/create", {"ttl": 1.5}),
    C("token create ttl beyond go duration", "POST", "auth/token/create", {"ttl": 9223372037}),
    C("token create period beyond go duration", "POST", "auth/token/create", {"period": "106752d"}),
    C("token create explicit_max_ttl Infinity", "POST", "auth/token/create", {"explicit_max_ttl": "Infinity"}),
    C("token create negative ttl", "POST", "auth/token/create", {"ttl": -1}),
    C("token create num_uses fraction", "POST", "auth/token/create", {"num_uses": 1.5}),
    C("token create num_uses exponent", "POST", "auth/token/create", {"num_uses": 1e30}),
    C("token create num_uses beyond int64", "POST", "auth/token/create", {"num_uses": 2**63}),
    C("token create renewable 2", "POST", "auth/token/create", {"renewable": 2}),
    C("token create ttl above explicit max", "POST", "auth/token/create", {"ttl": "3h", "explicit_max_ttl": "1h"}),
    C(
        "token create non-renewable",
        "POST",
        "auth/token/create",
        {"policies": ["default"], "renewable": False},
        save={"nonrenewable": "auth.client_token"},
    ),
    C("token lookup", "POST", "auth/token/lookup", {"token": "<<parent>>"}),
    C("token lookup-self", "GET", "auth/token/lookup-self", token="<<parent>>"),
    C("token lookup-accessor", "POST", "auth/token/lookup-accessor", {"accessor": "<<parent_accessor>>"}),
    C("token lookup unknown", "POST", "auth/token/lookup", {"token": "no-such-token"}),
    C("token lookup-accessor unknown", "POST", "auth/token/lookup-accessor", {"accessor": "no-such-accessor"}),
    C("token lookup without token field", "POST", "auth/token/lookup", {}),
    C("token lookup via query", "GET", "auth/token/lookup?token=<<parent>>"),
    C("token renew", "POST", "auth/token/renew", {"token": "<<parent>>", "increment": "30m"}),
    C("token renew increment exponent", "POST", "auth/token/renew", {"token": "<<parent>>", "increment": 1e30}),
    C(
        "token renew increment beyond go duration",
        "POST",
        "auth/token/renew",
        {"token": "<<parent>>", "increment": 9223372037},
    ),
    C("token renew negative increment", "POST", "auth/token/renew", {"token": "<<parent>>", "increment": "-5s"}),
    C("token renew-self", "POST", "auth/token/renew-self", {}, token="<<child>>"),
    C("token renew non-renewable", "POST", "auth/token/renew", {"token": "<<nonrenewable>>"}),
    C("token renew-accessor unknown", "POST", "auth/token/renew-accessor", {"accessor": "no-such-accessor"}),
    C("token list accessors", "LIST", "auth/token/accessors"),
    C("num_uses first use", "GET", "auth/token/lookup-self", token="<<limited>>"),
    C("num_uses second use", "GET", "auth/token/lookup-self", token="<<limited>>"),
    C("num_uses exhausted", "GET", "auth/token/lookup-self", token="<<limited>>"),
    # --- ACL -------------------------------------------------------------------------
    C("acl allowed read", "GET", "secret/data/allowed", token="<<parent>>"),
    C("acl denied read", "GET", "secret/data/denied", token="<<parent>>"),
    C("acl denied write", "POST", "secret/data/allowed", {"data": {"a": "b"}}, token="<<parent>>"),
    C("acl denied sys", "GET", "sys/mounts", token="<<parent>>"),
    C(
        "capabilities-self restricted",
        "POST",
        "sys/capabilities-self",
        {"paths": ["secret/data/allowed", "sys/mounts"]},
        token="<<parent>>",
    ),
    C(
        "capabilities-accessor",
        "POST",
        "sys/capabilities-accessor",
        {"accessor": "<<parent_accessor>>", "paths": ["secret/data/allowed"]},
    ),
    C("seal with restricted token", "PUT", "sys/seal", token="<<parent>>"),
    # --- revocation ------------------------------------------------------------------
    C("token revoke-orphan", "POST", "auth/token/revoke-orphan", {"token": "<<parent>>"}),
    C("orphaned parent is gone", "GET", "auth/token/lookup-self", token="<<parent>>"),
    C("orphaned child survives", "GET", "auth/token/lookup-self", token="<<child>>"),
    C("token revoke-accessor", "POST", "auth/token/revoke-accessor", {"accessor": "<<child_accessor>>"}),
    C("revoked by accessor", "GET", "auth/token/lookup-self", token="<<child>>"),
    C(
        "token create parent 2",
        "POST",
        "auth/token/create",
        {"policies": ["tokens"]},
        save={"parent2": "auth.client_token"},
    ),
    C(
        "token create child 2",
        "POST",
        "auth/token/create",
        {"policies": ["tokens"]},
        token="<<parent2>>",
        save={"child2": "auth.client_token"},
    ),
    C("token revoke", "POST", "auth/token/revoke", {"token": "<<parent2>>"}),
    C("child revoked with parent", "GET", "auth/token/lookup-self", token="<<child2>>"),
    C("token revoke without token", "POST", "auth/token/revoke", {}),
    C("token revoke unknown", "POST", "auth/token/revoke", {"token": "no-such-token"}),
    C("token revoke-accessor unknown", "POST", "auth/token/revoke-accessor", {"accessor": "no-such-accessor"}),
    C("token revoke-self", "POST", "auth/token/revoke-self", token="<<self_revoker>>"),
    C("revoked self", "GET", "auth/token/lookup-self", token="<<self_revoker>>"),
    C("token revoke orphan by root", "POST", "auth/token/revoke", {"token": "<<orphan>>"}),
    C("token tidy", "POST", "auth/token/tidy"),
    # --- auth methods: sys/auth and userpass --------------------------------------------
    C("auth enable userpass", "POST", "sys/auth/userpass", {"type": "userpass", "description": "people"}),
    C("auth enable on used path", "POST", "sys/auth/userpass", {"type": "userpass"}),
    C("auth enable unknown type", "POST", "sys/auth/bad", {"type": "no-such-method"}),
    C("auth enable token", "POST", "sys/auth/token2", {"type": "token"}),
    C("auth list", "GET", "sys/auth"),
    C("auth read", "GET", "sys/auth/userpass"),
    C("auth read missing", "GET", "sys/auth/nothere"),
    C("auth read tune", "GET", "sys/auth/userpass/tune"),
    C("auth tune", "POST", "sys/auth/userpass/tune", {"default_lease_ttl": "1h", "description": "tuned"}),
    C("auth read tune after tune", "GET", "sys/auth/userpass/tune"),
    C("userpass create user", "POST", "auth/userpass/users/alice", {"password": "pw", "token_policies": "p1,p2"}),
    C("userpass create user legacy fields", "POST", "auth/userpass/users/Carol", {"password": "x", "policies": "q"}),
    C("userpass create user without password", "POST", "auth/userpass/users/bob", {}),
    C("userpass read user", "GET", "auth/userpass/users/alice"),
    C("userpass read user legacy fields", "GET", "auth/userpass/users/carol"),
    C("userpass read missing user", "GET", "auth/userpass/users/nobody"),
    C("userpass list users", "LIST", "auth/userpass/users"),
    C("userpass update policies", "POST", "auth/userpass/users/alice/policies", {"token_policies": "p3"}),
    C("userpass update password", "POST", "auth/userpass/users/alice/password", {"password": "pw2"}),
    C(
        "userpass login",
        "POST",
        "auth/userpass/login/alice",
        {"password": "pw2"},
        token=None,
        save={"userpass_token": "auth.client_token"},
    ),
    C("userpass login token lookup", "GET", "auth/token/lookup-self", token="<<userpass_token>>"),
    C("userpass login old password", "POST", "auth/userpass/login/alice", {"password": "pw"}, token=None),
    C("userpass login unknown user", "POST", "auth/userpass/login/nobody", {"password": "pw"}, token=None),
    C("userpass users without token", "GET", "auth/userpass/users/alice", token=None),
    C("userpass delete user", "DELETE", "auth/userpass/users/carol"),
    C("userpass delete missing user", "DELETE", "auth/userpass/users/nobody"),
    C("auth disable", "DELETE", "sys/auth/userpass"),
    C("auth disable again", "DELETE", "sys/auth/userpass"),
    C("auth disable token", "DELETE", "sys/auth/token"),
    C("auth read after disable", "GET", "sys/auth/userpass"),
    # --- AppRole ------------------------------------------------------------------------
    C("approle enable", "POST", "sys/auth/approle", {"type": "approle"}),
    C(
        "approle create role",
        "POST",
        "auth/approle/role/r1",
        {"token_policies": "p1", "secret_id_ttl": "10m", "secret_id_num_uses": 2, "token_ttl": "1h"},
    ),
    C("approle create unbound role", "POST", "auth/approle/role/open", {"bind_secret_id": False}),
    C("approle read role", "GET", "auth/approle/role/r1"),
    C("approle read missing role", "GET", "auth/approle/role/nobody"),
    C("approle list roles", "LIST", "auth/approle/role"),
    C("approle read role-id", "GET", "auth/approle/role/r1/role-id", save={"role_id": "data.role_id"}),
    C(
        "approle generate secret-id",
        "POST",
        "auth/approle/role/r1/secret-id",
        {"metadata": '{"a": "b"}'},
        save={"secret_id": "data.secret_id", "secret_id_accessor": "data.secret_id_accessor"},
    ),
    C("approle secret-id for missing role", "POST", "auth/approle/role/nobody/secret-id"),
    C("approle list secret-id accessors", "LIST", "auth/approle/role/r1/secret-id"),
    C("approle lookup secret-id", "POST", "auth/approle/role/r1/secret-id/lookup", {"secret_id": "<<secret_id>>"}),
    C(
        "approle lookup secret-id accessor",
        "POST",
        "auth/approle/role/r1/secret-id-accessor/lookup",
        {"secret_id_accessor": "<<secret_id_accessor>>"},
    ),
    C(
        "approle lookup unknown accessor",
        "POST",
        "auth/approle/role/r1/secret-id-accessor/lookup",
        {"secret_id_accessor": "nope"},
    ),
    C(
        "approle login",
        "POST",
        "auth/approle/login",
        {"role_id": "<<role_id>>", "secret_id": "<<secret_id>>"},
        token=None,
    ),
    C(
        "approle login wrong secret",
        "POST",
        "auth/approle/login",
        {"role_id": "<<role_id>>", "secret_id": "x"},
        token=None,
    ),
    C("approle login wrong role", "POST", "auth/approle/login", {"role_id": "x", "secret_id": "x"}, token=None),
    C(
        "approle login last use",
        "POST",
        "auth/approle/login",
        {"role_id": "<<role_id>>", "secret_id": "<<secret_id>>"},
        token=None,
    ),
    C(
        "approle login spent",
        "POST",
        "auth/approle/login",
        {"role_id": "<<role_id>>", "secret_id": "<<secret_id>>"},
        token=None,
    ),
    C("approle custom secret-id", "POST", "auth/approle/role/r1/custom-secret-id", {"secret_id": "mine-123"}),
    C("approle custom role-id", "POST", "auth/approle/role/r1/role-id", {"role_id": "custom-role"}),
    C("approle destroy secret-id", "POST", "auth/approle/role/r1/secret-id/destroy", {"secret_id": "mine-123"}),
    C("approle lookup destroyed", "POST", "auth/approle/role/r1/secret-id/lookup", {"secret_id": "mine-123"}),
    C("approle delete role", "DELETE", "auth/approle/role/r1"),
    C("approle disable", "DELETE", "sys/auth/approle"),
    # --- bad input -------------------------------------------------------------------
    C("malformed json", "POST", "secret/data/x", b"{not json"),
    C("json array body", "POST", "secret/data/x", b"[1, 2]"),
    C("empty body write", "POST", "secret/data/x", b""),
    C("chunked body write", "POST", "secret/data/chunked", (b'{"data": ', b'{"a": "b"}}')),
    C("wrong method on seal-status", "PUT", "sys/seal-status", {}, token=None),
    C("unknown mount", "GET", "nowhere/x"),
    C("unknown sys path", "GET", "sys/no-such-endpoint"),
    C("no token", "GET", "secret/data/x", token=None),
    C("bogus token", "GET", "secret/data/x", token="bogus"),
    C("metrics prometheus", "GET", "sys/metrics?format=prometheus"),
    C("metrics without token", "GET", "sys/metrics?format=prometheus", token=None),
    # --- response wrapping ------------------------------------------------------------
    C("wrap put secret", "POST", "secret/data/wrapped", {"data": {"w": "1"}}),
    C(
        "wrap read secret",
        "GET",
        "secret/data/wrapped",
        headers={"X-Vault-Wrap-TTL": "60s"},
        save={"wrap1": "wrap_info.token"},
    ),
    C("wrap lookup without token", "POST", "sys/wrapping/lookup", {"token": "<<wrap1>>"}, token=None),
    C("wrap unwrap by body", "POST", "sys/wrapping/unwrap", {"token": "<<wrap1>>"}),
    C("wrap unwrap again", "POST", "sys/wrapping/unwrap", {"token": "<<wrap1>>"}),
    C("wrap lookup spent", "POST", "sys/wrapping/lookup", {"token": "<<wrap1>>"}, token=None),
    C("wrap wrap without ttl", "POST", "sys/wrapping/wrap", {"a": "b"}),
    C(
        "wrap wrap data",
        "POST",
        "sys/wrapping/wrap",
        {"a": "b"},
        headers={"X-Vault-Wrap-TTL": "2m"},
        save={"wrap2": "wrap_info.token"},
    ),
    C("wrap rewrap", "POST", "sys/wrapping/rewrap", {"token": "<<wrap2>>"}, save={"wrap3": "wrap_info.token"}),
    C("wrap unwrap rewrapped", "POST", "sys/wrapping/unwrap", {"token": "<<wrap3>>"}),
    C("wrap bad ttl", "GET", "secret/data/wrapped", headers={"X-Vault-Wrap-TTL": "abc"}),
    C(
        "wrap token create",
        "POST",
        "auth/token/create",
        {"policies": ["default"]},
        headers={"X-Vault-Wrap-TTL": "60s"},
        save={"wrap4": "wrap_info.token"},
    ),
    C("wrap unwrap as the wrapping token", "POST", "sys/wrapping/unwrap", token="<<wrap4>>"),
    # --- key rotation config, remount -------------------------------------------------
    C("rotate config read", "GET", "sys/rotate/config"),
    C("rotate config short interval", "POST", "sys/rotate/config", {"interval": "1h"}),
    C("rotate config bad operations", "POST", "sys/rotate/config", {"max_operations": 5}),
    C("rotate config write", "POST", "sys/rotate/config", {"interval": "25h", "enabled": False}),
    C("rotate config read back", "GET", "sys/rotate/config"),
    C("rotate keyring", "POST", "sys/rotate/keyring"),
    C("remount enable source", "POST", "sys/mounts/remount-src", {"type": "kv-v2"}),
    C("remount enable other", "POST", "sys/mounts/remount-other", {"type": "kv"}),
    C("remount missing", "POST", "sys/remount", {"from": "nope", "to": "x"}),
    C("remount onto a mount", "POST", "sys/remount", {"from": "remount-src", "to": "remount-other"}),
    C("remount into sys", "POST", "sys/remount", {"from": "remount-src", "to": "sys/x"}),
    C("remount without to", "POST", "sys/remount", {"from": "remount-src"}),
    C("remount token", "POST", "sys/remount", {"from": "auth/token", "to": "auth/t2"}),
    C(
        "remount move",
        "POST",
        "sys/remount",
        {"from": "remount-src", "to": "remount-dst"},
        save={"migration": "data.migration_id"},
    ),
    C("remount status unknown", "GET", "sys/remount/status/no-such-id"),
    # --- root token generation (OpenBao's authenticated path; sys/rekey/* is off in OpenBao 2.7.2) ---
    C("generate root status", "GET", "sys/generate-root-token/attempt"),
    C("generate root bad otp", "PUT", "sys/generate-root-token/attempt", {"otp": "short"}),
    C("generate root init", "PUT", "sys/generate-root-token/attempt", {}, save={"gr_nonce": "data.nonce"}),
    C("generate root init twice", "PUT", "sys/generate-root-token/attempt", {}),
    C("generate root wrong nonce", "PUT", "sys/generate-root-token/update", {"key": "00" * 32, "nonce": "x"}),
    C("generate root cancel", "DELETE", "sys/generate-root-token/attempt"),
    C("generate root status after cancel", "GET", "sys/generate-root-token/attempt"),
    C("rekey status", "GET", "sys/rekey/init"),
    # --- token roles --------------------------------------------------------------------
    C(
        "role write",
        "POST",
        "auth/token/roles/app",
        {
            "allowed_policies": "reader,tokens",
            "orphan": True,
            "path_suffix": "rev1",
            "token_period": "1h",
            "token_num_uses": 3,
        },
    ),
    C("role read", "GET", "auth/token/roles/app"),
    C("role list", "LIST", "auth/token/roles"),
    C("role read missing", "GET", "auth/token/roles/nope"),
    C("role write legacy durations", "POST", "auth/token/roles/legacy", {"period": "2h", "explicit_max_ttl": "3h"}),
    C("role read legacy durations", "GET", "auth/token/roles/legacy"),
    C("role write both periods", "POST", "auth/token/roles/legacy", {"period": "2h", "token_period": "1h"}),
    C(
        "role write globs",
        "POST",
        "auth/token/roles/globs",
        {"allowed_policies_glob": "app-*", "disallowed_policies": "app-secret", "allowed_entity_aliases": "a,b"},
    ),
    C("role read globs", "GET", "auth/token/roles/globs"),
    C("role write bad suffix", "POST", "auth/token/roles/bad", {"path_suffix": "v1"}),
    C("role write bad type", "POST", "auth/token/roles/bad", {"token_type": "nope"}),
    C("role write batch non-orphan", "POST", "auth/token/roles/bad", {"token_type": "batch"}),
    C(
        "role write batch orphan",
        "POST",
        "auth/token/roles/bad",
        {"token_type": "batch", "orphan": True, "renewable": False},
    ),
    C("role write bound cidrs", "POST", "auth/token/roles/bad", {"token_bound_cidrs": "10.0.0.0/8"}),
    C("role write negative uses", "POST", "auth/token/roles/bad", {"token_num_uses": -1}),
    C("role write bad period", "POST", "auth/token/roles/bad", {"period": "soon"}),
    C("role create token", "POST", "auth/token/create/app", {}, save={"role_token": "auth.client_token"}),
    C("role create token lookup", "POST", "auth/token/lookup", {"token": "<<role_token>>"}),
    C("role create foreign policy", "POST", "auth/token/create/app", {"policies": ["other"]}),
    C("role create subset", "POST", "auth/token/create/app", {"policies": "reader"}),
    C("role create unknown role", "POST", "auth/token/create/nope", {}),
    C("role create glob allowed", "POST", "auth/token/create/globs", {"policies": "app-one"}),
    C("role create glob disallowed", "POST", "auth/token/create/globs", {"policies": "app-secret"}),
    C("role create lesser period", "POST", "auth/token/create/app", {"period": "30m"}),
    C("role user policy", "PUT", "sys/policies/acl/roleuser", {"policy": ROLE_USER_POLICY}),
    C(
        "role user token",
        "POST",
        "auth/token/create",
        {"policies": ["roleuser"], "ttl": "1h"},
        save={"role_user": "auth.client_token"},
    ),
    C("role create as narrow token", "POST", "auth/token/create/app", {}, token="<<role_user>>"),
    C("role create as narrow token unlisted role", "POST", "auth/token/create/globs", {}, token="<<role_user>>"),
    C("role create as narrow token without role", "POST", "auth/token/create", {}, token="<<role_user>>"),
    # --- sys/leases over token leases -----------------------------------------------------
    C("leases list top", "LIST", "sys/leases/lookup/auth/token/"),
    C(
        "leases list role",
        "LIST",
        "sys/leases/lookup/auth/token/create/app/rev1/",
        save={"lease_name": "data.keys.0"},
    ),
    C("leases list nothing", "LIST", "sys/leases/lookup/nothing/"),
    C("leases list as narrow token", "LIST", "sys/leases/lookup/auth/token/", token="<<role_user>>"),
    C("leases lookup", "PUT", "sys/leases/lookup", {"lease_id": "auth/token/create/app/rev1/<<lease_name>>"}),
    C("leases lookup invalid", "PUT", "sys/leases/lookup", {"lease_id": "auth/token/create/nope"}),
    C("leases lookup missing id", "PUT", "sys/leases/lookup", {}),
    C("leases lookup via GET", "GET", "sys/leases/lookup"),
    C("leases renew token lease", "PUT", "sys/leases/renew", {"lease_id": "auth/token/create/app/rev1/<<lease_name>>"}),
    C("leases renew unknown", "PUT", "sys/leases/renew", {"lease_id": "auth/token/create/nope"}),
    C("role write non-renewable", "POST", "auth/token/roles/fixed", {"renewable": False, "path_suffix": "rev9"}),
    C("role create non-renewable", "POST", "auth/token/create/fixed", {"ttl": "1h"}),
    C(
        "leases list non-renewable",
        "LIST",
        "sys/leases/lookup/auth/token/create/fixed/rev9/",
        save={"fixed_lease": "data.keys.0"},
    ),
    C(
        "leases lookup non-renewable",
        "PUT",
        "sys/leases/lookup",
        {"lease_id": "auth/token/create/fixed/rev9/<<fixed_lease>>"},
    ),
    C(
        "leases renew non-renewable",
        "PUT",
        "sys/leases/renew",
        {"lease_id": "auth/token/create/fixed/rev9/<<fixed_lease>>"},
    ),
    C("leases renew old path", "PUT", "sys/renew", {"lease_id": "auth/token/create/nope"}),
    C("leases revoke unknown", "PUT", "sys/leases/revoke", {"lease_id": "auth/token/create/nope"}),
    C("leases revoke unknown in url", "PUT", "sys/leases/revoke/auth/token/create/nope"),
    C("leases revoke old path", "PUT", "sys/revoke", {"lease_id": "auth/token/create/nope"}),
    C("leases revoke", "PUT", "sys/leases/revoke", {"lease_id": "auth/token/create/app/rev1/<<lease_name>>"}),
    C("leases lookup revoked", "PUT", "sys/leases/lookup", {"lease_id": "auth/token/create/app/rev1/<<lease_name>>"}),
    C("leases revoke-prefix role", "PUT", "sys/leases/revoke-prefix/auth/token/create/app"),
    C("leases list role after revoke-prefix", "LIST", "sys/leases/lookup/auth/token/create/app/"),
    C("leases revoke-prefix async", "PUT", "sys/leases/revoke-prefix/auth/token/create/globs", {"sync": False}),
    C("leases revoke-prefix as narrow token", "PUT", "sys/leases/revoke-prefix/x", token="<<role_user>>"),
    C("role delete", "DELETE", "auth/token/roles/app"),
    C("role delete missing", "DELETE", "auth/token/roles/app"),
    C("role read deleted", "GET", "auth/token/roles/app"),
]

_REF = re.compile(r"<<(\w+)>>")


def substitute(value: Any, refs: dict[str, str]) -> Any:
    """``value`` with every ``<<name>>`` replaced from ``refs`` (recursively)."""
    if isinstance(value, str):
        return _REF.sub(lambda m: refs.get(m[1], f"<unset:{m[1]}>"), value)
    if isinstance(value, dict):
        return {k: substitute(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, refs) for v in value]
    return value


def dig(body: Any, dotted: str) -> Any:
    """``body["a"]["b"]`` for ``"a.b"`` (``"keys.0"``: a list's first item), or None."""
    for part in dotted.split("."):
        if isinstance(body, list) and part.isdigit():
            body = body[int(part)] if int(part) < len(body) else None
        elif isinstance(body, dict):
            body = body.get(part)
        else:
            return None
    return body


def send(url: str, case: Case, refs: dict[str, str]) -> Outcome:
    """Send ``case`` to the server at ``url``; record what ``save`` names in ``refs``."""
    headers = dict(case.headers)
    token = substitute(case.token, refs)
    if token:
        headers["X-Vault-Token"] = token
    kwargs: dict[str, Any] = {}
    if isinstance(case.body, (bytes, tuple)):
        kwargs["data"] = iter(case.body) if isinstance(case.body, tuple) else case.body
        headers.setdefault("Content-Type", "application/json")
    elif case.body is not None:
        kwargs["data"] = json.dumps(substitute(case.body, refs))
        headers.setdefault("Content-Type", "application/json")
    response = requests.request(
        case.method, f"{url}/v1/{substitute(case.path, refs)}", headers=headers, timeout=30, **kwargs
    )
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    for name, dotted in case.save.items():
        value = dig(body, dotted)
        if isinstance(value, str):
            refs[name] = value
    return Outcome(response.status_code, body, response.text)


def run(url: str, refs: dict[str, str]) -> dict[str, Outcome]:
    """Send every case, in order, to one server."""
    return {case.name: send(url, case, refs) for case in CASES}
