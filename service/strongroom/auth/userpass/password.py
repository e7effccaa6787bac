"""Password hashing for userpass: scrypt, a salt per user, constant-time checks.

Vault stores bcrypt hashes; Strongroom uses ``cryptography``'s scrypt, which is
memory-hard (16 MiB per hash at n=2**14, r=8), so a stolen user record is
expensive to attack on GPUs.  The parameters are stored with each hash, so they
can be raised later without invalidating older records.

``verify(None, password)`` hashes against a fixed dummy record: a login for an
unknown user costs the same as a wrong password, so the response time does not
say which users exist.
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32

# Used when the user does not exist; never matches (the password is not known to anyone).
_DUMMY: dict[str, Any] = {
    "alg": "scrypt",
    "n": SCRYPT_N,
    "r": SCRYPT_R,
    "p": SCRYPT_P,
    "salt": base64.b64encode(b"\x00" * SALT_BYTES).decode(),
    "hash": base64.b64encode(b"\x00" * HASH_BYTES).decode(),
}


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=HASH_BYTES, n=n, r=r, p=p).derive(password.encode("utf-8"))


def hash_password(password: str, randbytes: Callable[[int], bytes] = os.urandom) -> dict[str, Any]:
    """The stored record of ``password``: algorithm, parameters, salt and hash (base64)."""
    salt = randbytes(SALT_BYTES)
    digest = _derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return {
        "alg": "scrypt",
        "n": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": base64.b64encode(salt).decode(),
        "hash": base64.b64encode(digest).decode(),
    }


def verify(record: Mapping[str, Any] | None, password: str) -> bool:
    """Whether ``password`` matches ``record``; ``None`` (no such user) costs the
    same and is always False."""
    stored = _DUMMY if record is None else record
    digest = _derive(password, base64.b64decode(stored["salt"]), int(stored["n"]), int(stored["r"]), int(stored["p"]))
    matches = hmac.compare_digest(digest, base64.b64decode(stored["hash"]))
    return matches and record is not None
