"""Shamir secret sharing: Vault's share format, field, recovery and validation."""

from __future__ import annotations

import itertools
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.barrier import shamir
from strongroom.errors import InvalidRequest


def reference_mul(a: int, b: int) -> int:
    """Bitwise GF(2^8) multiply with the AES polynomial, independent of the tables."""
    product = 0
    for _ in range(8):
        if b & 1:
            product ^= a
        carry = a & 0x80
        a = (a << 1) & 0xFF
        if carry:
            a ^= 0x1B
        b >>= 1
    return product


def reference_inverse(a: int) -> int:
    return next(b for b in range(1, 256) if reference_mul(a, b) == 1)


def reference_combine(shares: list[bytes]) -> bytes:
    """Vault's Combine written byte by byte, as an independent oracle."""
    xs = [share[-1] for share in shares]
    out = bytearray()
    for idx in range(len(shares[0]) - 1):
        value = 0
        for i, share in enumerate(shares):
            basis = 1
            for j, x_j in enumerate(xs):
                if i != j:
                    basis = reference_mul(basis, reference_mul(x_j, reference_inverse(xs[i] ^ x_j)))
            value ^= reference_mul(share[idx], basis)
        out.append(value)
    return bytes(out)


@st.composite
def split_cases(draw):
    secret = draw(st.binary(min_size=1, max_size=64))
    parts = draw(st.integers(min_value=2, max_value=24))
    threshold = draw(st.integers(min_value=2, max_value=parts))
    return secret, parts, threshold


class TestField:
    def test_fips_197_multiplication_examples(self):
        # FIPS-197 section 4.2: {57} . {83} = {c1} and {57} . {13} = {fe}.
        assert shamir.mul(0x57, 0x83) == 0xC1
        assert shamir.mul(0x57, 0x13) == 0xFE

    def test_multiplication_matches_bitwise_reference_everywhere(self):
        for a in range(256):
            for b in range(256):
                assert shamir.mul(a, b) == reference_mul(a, b)

    def test_division_inverts_multiplication(self):
        for a in range(256):
            for b in range(1, 256):
                assert shamir.mul(shamir.div(a, b), b) == a

    def test_division_by_zero(self):
        with pytest.raises(ZeroDivisionError):
            shamir.div(7, 0)


class TestVaultFormat:
    def test_known_two_of_two_vector(self):
        # Secret 0x57 on the line 0x57 + 0x83 x: y(1) = 0xd4, y(2) = 0x57 ^ (0x83 * 2) = 0x4a.
        assert shamir.combine([b"\xd4\x01", b"\x4a\x02"]) == b"\x57"
        assert shamir.combine([b"\x4a\x02", b"\xd4\x01"]) == b"\x57"

    def test_share_layout(self):
        secret = os.urandom(32)
        shares = shamir.split(secret, 5, 3)
        assert len(shares) == 5
        assert all(isinstance(share, bytes) and len(share) == 33 for share in shares)
        xs = [share[-1] for share in shares]
        assert len(set(xs)) == 5
        assert 0 not in xs

    def test_x_coordinates_are_random(self):
        seen = {tuple(share[-1] for share in shamir.split(b"secret", 5, 3)) for _ in range(20)}
        assert len(seen) > 1

    def test_all_255_x_coordinates_when_parts_is_255(self):
        shares = shamir.split(b"k", 255, 2)
        assert sorted(share[-1] for share in shares) == list(range(1, 256))

    @settings(max_examples=50, deadline=None)
    @given(split_cases())
    def test_combine_matches_byte_by_byte_reference(self, case):
        secret, parts, threshold = case
        shares = shamir.split(secret, parts, threshold)[:threshold]
        assert shamir.combine(shares) == reference_combine(shares) == secret

    @settings(max_examples=50, deadline=None)
    @given(st.lists(st.binary(min_size=9, max_size=9), min_size=2, max_size=6), st.data())
    def test_combine_of_arbitrary_points_matches_reference(self, ys, data):
        xs = data.draw(st.lists(st.integers(1, 255), min_size=len(ys), max_size=len(ys), unique=True))
        shares = [y[:-1] + bytes([x]) for y, x in zip(ys, xs, strict=True)]
        assert shamir.combine(shares) == reference_combine(shares)

    def test_injected_randomness_is_used_and_constant_randomness_terminates(self):
        shares = shamir.split(b"\x01\x02\x03", 4, 2, randbytes=lambda n: bytes(n))
        # All-zero coefficients: every share carries the secret; ties in the
        # random order keep x = 1..4.
        assert shares == [b"\x01\x02\x03" + bytes([x]) for x in (1, 2, 3, 4)]
        assert shamir.combine(shares[1:3]) == b"\x01\x02\x03"


class TestRecovery:
    @settings(max_examples=100, deadline=None)
    @given(split_cases(), st.randoms(use_true_random=False))
    def test_any_threshold_distinct_shares_recover_the_secret(self, case, rnd):
        secret, parts, threshold = case
        shares = shamir.split(secret, parts, threshold)
        subset = rnd.sample(shares, threshold)
        assert shamir.combine(subset) == secret

    @settings(max_examples=50, deadline=None)
    @given(split_cases(), st.randoms(use_true_random=False), st.data())
    def test_more_than_threshold_shares_also_recover(self, case, rnd, data):
        secret, parts, threshold = case
        shares = shamir.split(secret, parts, threshold)
        count = data.draw(st.integers(threshold, parts))
        assert shamir.combine(rnd.sample(shares, count)) == secret

    def test_every_subset_of_threshold_shares_recovers(self):
        secret = os.urandom(32)
        shares = shamir.split(secret, 6, 3)
        for subset in itertools.combinations(shares, 3):
            assert shamir.combine(list(subset)) == secret

    @settings(max_examples=100, deadline=None)
    @given(st.binary(min_size=16, max_size=64), st.integers(3, 20), st.data())
    def test_fewer_than_threshold_shares_do_not_recover(self, secret, threshold, data):
        parts = data.draw(st.integers(threshold, 24))
        count = data.draw(st.integers(2, threshold - 1))
        shares = shamir.split(secret, parts, threshold)
        subset = data.draw(st.permutations(shares))[:count]
        # Wrong with probability 1 - 2^-128 at least: each byte is uniform.
        assert shamir.combine(subset) != secret

    def test_threshold_minus_one_shares_fail_over_many_trials(self):
        rnd = random.Random(1234)
        for _ in range(200):
            secret = os.urandom(32)
            shares = shamir.split(secret, 5, 3)
            assert shamir.combine(rnd.sample(shares, 2)) != secret

    def test_threshold_minus_one_shares_give_uniform_looking_bytes(self):
        # With 2 of a 3-threshold split of a fixed one-byte secret, the
        # reconstructed byte should take many values, not cluster on the secret.
        results = {shamir.combine(shamir.split(b"\x00", 3, 3)[:2]) for _ in range(1000)}
        assert len(results) > 230


class TestSplitValidation:
    @pytest.mark.parametrize(
        "parts, threshold, message",
        [
            (2, 3, "parts cannot be less than threshold"),
            (256, 3, "parts cannot exceed 255"),
            (5, 1, "threshold must be at least 2"),
            (5, 0, "threshold must be at least 2"),
            (300, 256, "parts cannot exceed 255"),
        ],
    )
    def test_bad_parameters(self, parts, threshold, message):
        with pytest.raises(InvalidRequest) as exc:
            shamir.split(b"secret", parts, threshold)
        assert str(exc.value) == message

    def test_empty_secret(self):
        with pytest.raises(InvalidRequest, match="cannot split an empty secret"):
            shamir.split(b"", 3, 2)

    @pytest.mark.parametrize("value", ["3", 3.0, True, None])
    def test_non_integer_parameters(self, value):
        with pytest.raises(InvalidRequest):
            shamir.split(b"secret", value, 2)
        with pytest.raises(InvalidRequest):
            shamir.split(b"secret", 5, value)

    def test_non_bytes_secret(self):
        with pytest.raises(InvalidRequest):
            shamir.split("secret", 3, 2)


class TestCombineValidation:
    def test_fewer_than_two_shares(self):
        shares = shamir.split(b"secret", 3, 2)
        for few in ([], shares[:1]):
            with pytest.raises(InvalidRequest, match="less than two parts cannot be used to reconstruct the secret"):
                shamir.combine(few)

    def test_shares_shorter_than_two_bytes(self):
        with pytest.raises(InvalidRequest, match="parts must be at least two bytes"):
            shamir.combine([b"\x01", b"\x02"])

    def test_unequal_lengths(self):
        with pytest.raises(InvalidRequest, match="all parts must be the same length"):
            shamir.combine([b"\x01\x02\x03", b"\x01\x04"])

    def test_duplicate_x_coordinate(self):
        shares = shamir.split(b"secret", 3, 2)
        with pytest.raises(InvalidRequest, match="duplicate part detected"):
            shamir.combine([shares[0], shares[0]])
        forged = shares[1][:-1] + shares[0][-1:]
        with pytest.raises(InvalidRequest, match="duplicate part detected"):
            shamir.combine([shares[0], forged])
