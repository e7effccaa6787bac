"""Asymmetric transit keys: ed25519, ecdsa-p256/p384/p521, rsa-2048/3072/4096 (Vault's ``keysutil`` signing).

https://openbao.org/api-docs/secret/transit/#sign-data

A version's private key is stored as PKCS#8 DER (under the barrier).  What
Vault shows and exports: an ed25519 public key as base64 of its 32 bytes and
the signing key as base64 of Go's 64-byte private key (seed || public key);
ECDSA and RSA public keys as PKIX PEM, signing keys as SEC1 / PKCS#1 PEM.
Signatures are ``vault:vN:`` then base64 (``asn1``, the default: DER for
ECDSA) or unpadded base64url (``jws``: ECDSA as fixed-size r || s).
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.errors import InvalidRequest
from strongroom.sdk import sealing

CURVES: dict[str, ec.EllipticCurve] = {
    "ecdsa-p256": ec.SECP256R1(),
    "ecdsa-p384": ec.SECP384R1(),
    "ecdsa-p521": ec.SECP521R1(),
}
CURVE_NAMES = {"ecdsa-p256": "P-256", "ecdsa-p384": "P-384", "ecdsa-p521": "P-521"}
RSA_BITS = {"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}
ASYMMETRIC_TYPES = frozenset({"ed25519", *CURVES, *RSA_BITS})
#: Loaded private keys one process keeps (``load``).
LOADED_MAX = 256

SIGN_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha2-224": hashes.SHA224,
    "sha2-256": hashes.SHA256,
    "sha2-384": hashes.SHA384,
    "sha2-512": hashes.SHA512,
    "sha3-224": hashes.SHA3_224,
    "sha3-256": hashes.SHA3_256,
    "sha3-384": hashes.SHA3_384,
    "sha3-512": hashes.SHA3_512,
}

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def generate(key_type: str) -> bytes:
    """A new private key of ``key_type`` as PKCS#8 DER."""
    key: PrivateKey
    if key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif key_type in CURVES:
        key = ec.generate_private_key(CURVES[key_type])
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS[key_type])
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@functools.lru_cache(maxsize=LOADED_MAX)
def load(der: bytes) -> PrivateKey:
    """The private key of PKCS#8 ``der``.  Kept by content (the same bytes always load
    the same key): loading checks the key, about 50 ms for RSA-2048, once per key version
    and process instead of at every sign, verify or RSA encrypt.  Forgotten when the
    node seals (sdk/sealing.py)."""
    key = serialization.load_der_private_key(der, password=None)
    assert isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    return key


sealing.on_seal(load.cache_clear)


def public_key(der: bytes) -> str:
    """The public key as Vault's read of ``keys/<name>`` shows it."""
    key = load(der)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode()


def export(der: bytes, export_type: str) -> str:
    """``signing-key`` or ``public-key`` material as ``export/`` returns it."""
    key = load(der)
    # Vault trims the PEM's last newline for ECDSA exports only.
    trim = "\n" if isinstance(key, ec.EllipticCurvePrivateKey) else ""
    if export_type == "public-key":
        return public_key(der).rstrip(trim)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        seed = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(seed + public).decode()
    # SEC1 for EC, PKCS#1 for RSA: what Go's x509.Marshal{EC,PKCS1}PrivateKey give.
    fmt = serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode().rstrip(trim)


def derive_ed25519(der: bytes, context: bytes) -> bytes:
    """The ed25519 key derived from ``der`` for ``context``, as PKCS#8 DER (Vault's ``DeriveKey``):
    its seed is HKDF-SHA256 (no salt, ``context`` as info) of Go's 64-byte private key."""
    key = load(der)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    go_private = base64.b64decode(export(der, "signing-key"))
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=context).derive(go_private)
    derived = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    return derived.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def key_name(key_type: str) -> str:
    """The ``name`` of a version in the read (``ed25519``, ``P-256``, ``rsa-2048``)."""
    return CURVE_NAMES.get(key_type, key_type)


class SignOptions:
    """How to sign or verify: hash, whether ``input`` is already the digest, RSA padding, marshaling."""

    def __init__(
        self,
        hash_algorithm: str = "sha2-256",
        *,
        prehashed: bool = False,
        signature_algorithm: str = "",
        marshaling_algorithm: str = "asn1",
        salt_length: str = "auto",
    ):
        if hash_algorithm not in SIGN_HASHES:
            raise InvalidRequest(f"unsupported hash algorithm {hash_algorithm}")
        if marshaling_algorithm not in ("asn1", "jws"):
            raise InvalidRequest(f"unsupported marshaling algorithm {marshaling_algorithm}")
        if signature_algorithm not in ("", "pss", "pkcs1v15"):
            raise InvalidRequest(f"unsupported rsa signature algorithm {signature_algorithm}")
        self.hash = SIGN_HASHES[hash_algorithm]()
        self.prehashed = prehashed
        self.pss = signature_algorithm != "pkcs1v15"
        self.jws = marshaling_algorithm == "jws"
        self.salt_length = salt_length

    def digest(self, data: bytes) -> bytes:
        if self.prehashed:
            return data
        h = hashes.Hash(self.hash)
        h.update(data)
        return h.finalize()

    def rsa_padding(self, verifying: bool) -> padding.AsymmetricPadding:
        if not self.pss:
            return padding.PKCS1v15()
        salt: Any
        if self.salt_length == "auto":
            salt = padding.PSS.AUTO if verifying else padding.PSS.MAX_LENGTH
        elif self.salt_length == "hash":
            salt = padding.PSS.DIGEST_LENGTH
        else:
            try:
                salt = int(self.salt_length)
            except ValueError:
                raise InvalidRequest(f"salt_length {self.salt_length!r} is invalid") from None
        return padding.PSS(mgf=padding.MGF1(self.hash), salt_length=salt)

    def encode(self, raw: bytes) -> str:
        if self.jws:
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return base64.b64encode(raw).decode()

    def decode(self, text: str) -> bytes:
        try:
            if self.jws:
                return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return base64.b64decode(text, validate=True)
        except ValueError:
            raise InvalidRequest("invalid signature: could not decode base64") from None


def _curve_size(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> int:
    return (key.curve.key_size + 7) // 8


def sign(der: bytes, data: bytes, options: SignOptions) -> str:
    """The encoded signature (without the ``vault:vN:`` prefix) of ``data``."""
    key = load(der)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        if options.prehashed:
            raise InvalidRequest("prehashed input is not supported for ed25519 keys")
        return options.encode(key.sign(data))
    digest = options.digest(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(digest, ec.ECDSA(utils.Prehashed(options.hash)))
        if options.jws:
            r, s = utils.decode_dss_signature(signature)
            size = _curve_size(key)
            signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return options.encode(signature)
    return options.encode(key.sign(digest, options.rsa_padding(False), utils.Prehashed(options.hash)))


def verify(der: bytes, data: bytes, encoded: str, options: SignOptions) -> bool:
    """Whether ``encoded`` is a valid signature of ``data``."""
    public = load(der).public_key()
    signature = options.decode(encoded)
    try:
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            if options.jws:
                size = _curve_size(public)
                if len(signature) != 2 * size:
                    return False
                signature = utils.encode_dss_signature(
                    int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
                )
            public.verify(signature, options.digest(data), ec.ECDSA(utils.Prehashed(options.hash)))
        else:
            assert isinstance(public, rsa.RSAPublicKey)
            public.verify(signature, options.digest(data), options.rsa_padding(True), utils.Prehashed(options.hash))
    except InvalidSignature:
        return False
    return True


def rsa_encrypt(der: bytes, plaintext: bytes) -> bytes:
    """RSA-OAEP with SHA-256, as Vault encrypts with an RSA key."""
    key = load(der)
    assert isinstance(key, rsa.RSAPrivateKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    return key.public_key().encrypt(plaintext, oaep)


def rsa_decrypt(der: bytes, ciphertext: bytes) -> bytes:
    key = load(der)
    assert isinstance(key, rsa.RSAPrivateKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    try:
        return key.decrypt(ciphertext, oaep)
    except ValueError:
        raise InvalidRequest("crypto/rsa: decryption error") from None
