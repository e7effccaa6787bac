"""Shamir's secret sharing in HashiCorp Vault's share format.

Shares interoperate with Vault's ``shamir`` package
(https://github.com/hashicorp/vault/tree/main/shamir): arithmetic in GF(2^8)
with the AES polynomial x^8 + x^4 + x^3 + x + 1, one random polynomial of degree
``threshold - 1`` per secret byte, and each share laid out as
``y_1 .. y_n | x``: ``len(secret)`` y-values followed by one byte holding the
share's x-coordinate (unique, non-zero, chosen at random).

Instead of looping over secret bytes in Python, every byte position is processed
at once: multiplying by a field constant is a byte-to-byte substitution
(``bytes.translate`` with a precomputed table) and field addition is XOR of whole
byte strings as integers.  ``split`` costs O(parts * threshold) and ``combine``
O(shares^2) Python-level steps, each over the full secret length in C.

Timing: the substitutions index tables by secret-derived bytes, as Vault's
original log/exp implementation did; CPython offers no constant-time guarantee
either way, so the unseal key must be protected by keeping it in memory only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from strongroom.errors import InvalidRequest

# The AES reduction polynomial x^8 + x^4 + x^3 + x + 1.
_POLYNOMIAL = 0x11B
# 3 generates the multiplicative group of GF(2^8) under the AES polynomial
# (2 does not), so its powers give complete log/exp tables.
_GENERATOR = 3


def _xtime_mul(a: int, b: int) -> int:
    """Carry-less multiply-and-reduce; only used to build the tables at import."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        a <<= 1
        if a & 0x100:
            a ^= _POLYNOMIAL
        b >>= 1
    return product


def _build_tables() -> tuple[list[int], list[int]]:
    exp = [0] * 510
    log = [0] * 256
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        value = _xtime_mul(value, _GENERATOR)
    # Doubling the exp table lets mul() skip the "mod 255" on log sums.
    for power in range(255, 510):
        exp[power] = exp[power - 255]
    return exp, log


_EXP, _LOG = _build_tables()


def mul(a: int, b: int) -> int:
    """Product of two field elements in GF(2^8) (AES polynomial)."""
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def div(a: int, b: int) -> int:
    """Quotient ``a / b`` in GF(2^8); ``b`` must be non-zero."""
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(2^8)")
    if a == 0:
        return 0
    return _EXP[_LOG[a] + 255 - _LOG[b]]


# _MUL_TABLES[c] maps every byte v to c * v: bytes.translate then multiplies a
# whole secret-length vector by the constant c in one C call.
_MUL_TABLES = [bytes(mul(c, v) for v in range(256)) for c in range(256)]


def _xor(a: bytes, b: bytes) -> bytes:
    """Field addition of two equal-length byte vectors."""
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def _random_x_coordinates(parts: int, randbytes: Callable[[int], bytes]) -> list[int]:
    """``parts`` distinct x-coordinates from 1..255 in random order.

    Sorting by 64-bit random keys is a uniform permutation unless keys collide
    (probability below 2^-48), and unlike rejection sampling it terminates even
    when a test injects constant "randomness".
    """
    pool = randbytes(255 * 8)
    keys = [pool[i * 8 : (i + 1) * 8] for i in range(255)]
    order = sorted(range(255), key=keys.__getitem__)
    return [index + 1 for index in order[:parts]]


def _require_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer")
    return value


def split(secret: bytes, parts: int, threshold: int, randbytes: Callable[[int], bytes] = os.urandom) -> list[bytes]:
    """Split ``secret`` into ``parts`` shares, any ``threshold`` of which recover it.

    Each share is ``len(secret) + 1`` bytes: the y-values, then the x-coordinate.
    Fewer than ``threshold`` shares reveal nothing about the secret: every
    non-constant coefficient is uniformly random.  Validation and messages follow
    Vault's ``shamir.Split``.
    """
    _require_int("parts", parts)
    _require_int("threshold", threshold)
    if parts < threshold:
        raise InvalidRequest("parts cannot be less than threshold")
    if parts > 255:
        raise InvalidRequest("parts cannot exceed 255")
    if threshold < 2:
        raise InvalidRequest("threshold must be at least 2")
    if threshold > 255:  # unreachable after the checks above; kept in Vault's order
        raise InvalidRequest("threshold cannot exceed 255")
    if not isinstance(secret, (bytes, bytearray, memoryview)):
        raise InvalidRequest("secret must be bytes")
    secret = bytes(secret)
    if not secret:
        raise InvalidRequest("cannot split an empty secret")

    length = len(secret)
    xs = _random_x_coordinates(parts, randbytes)
    # coefficients[k] holds the degree-k coefficient for every byte position;
    # degree 0 is the secret itself.
    pool = randbytes(length * (threshold - 1))
    coefficients = [secret] + [pool[k * length : (k + 1) * length] for k in range(threshold - 1)]

    shares = []
    for x in xs:
        table = _MUL_TABLES[x]
        # Horner's rule on all byte positions at once.
        y = coefficients[-1]
        for coefficient in reversed(coefficients[:-1]):
            y = _xor(y.translate(table), coefficient)
        shares.append(y + bytes([x]))
    return shares


def combine(shares: Sequence[bytes]) -> bytes:
    """Recover the secret from shares made by ``split`` (ours or Vault's).

    Lagrange interpolation at x = 0.  With at least ``threshold`` genuine shares
    the result is the secret; with fewer it is unrelated random-looking bytes, and
    there is no way to tell (the unseal step detects it when decryption fails).
    Validation and messages follow Vault's ``shamir.Combine``.
    """
    if len(shares) < 2:
        raise InvalidRequest("less than two parts cannot be used to reconstruct the secret")
    shares = [bytes(share) for share in shares]
    share_length = len(shares[0])
    if share_length < 2:
        raise InvalidRequest("parts must be at least two bytes")
    if any(len(share) != share_length for share in shares):
        raise InvalidRequest("all parts must be the same length")
    xs = [share[-1] for share in shares]
    if len(set(xs)) != len(xs):
        raise InvalidRequest("duplicate part detected")

    secret = bytes(share_length - 1)
    for i, share in enumerate(shares):
        # Lagrange basis polynomial l_i evaluated at 0: prod x_j / (x_i - x_j),
        # where subtraction is XOR in characteristic 2.
        basis = 1
        for j, x_j in enumerate(xs):
            if j != i:
                basis = mul(basis, div(x_j, xs[i] ^ x_j))
        secret = _xor(secret, share[:-1].translate(_MUL_TABLES[basis]))
    return secret
