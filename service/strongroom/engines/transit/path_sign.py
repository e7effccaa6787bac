"""``sign/<name>(/<hash_algorithm>)``: sign base64 input with an ed25519, ECDSA or RSA key.

https://openbao.org/api-docs/secret/transit/#sign-data

Never writes: a performance standby serves it.  Verification of a signature
is ``verify/<name>`` (``path_hmac``), which takes an ``hmac`` or a ``signature``.
"""

from __future__ import annotations

from typing import Any

from strongroom.engines.transit import asymmetric
from strongroom.engines.transit.asymmetric import SignOptions
from strongroom.engines.transit.base import NAME, ItemResult, PathGroup, decode_base64, int_field, run_items
from strongroom.errors import InvalidRequest
from strongroom.fields import to_bool, to_string
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response


def sign_options(data: dict[str, Any], in_path: str) -> SignOptions:
    """``hash_algorithm`` (from the path first; ``algorithm`` is its old name), ``prehashed``,
    ``signature_algorithm``, ``marshaling_algorithm``, ``salt_length``."""
    return SignOptions(
        in_path
        or to_string("hash_algorithm", data.get("hash_algorithm"))
        or to_string("algorithm", data.get("algorithm"))
        or "sha2-256",
        prehashed=to_bool("prehashed", data.get("prehashed")),
        signature_algorithm=to_string("signature_algorithm", data.get("signature_algorithm")),
        marshaling_algorithm=to_string("marshaling_algorithm", data.get("marshaling_algorithm")) or "asn1",
        salt_length=to_string("salt_length", data.get("salt_length")) or "auto",
    )


def sign_input(item: dict[str, Any]) -> bytes:
    if item.get("input") in (None, ""):
        raise InvalidRequest("missing input to sign")
    return decode_base64("input", item["input"], "unable to decode input as base64: ")


class SignPath(PathGroup):
    """``POST sign/<name>(/<hash_algorithm>)``, single or ``batch_input``."""

    def paths(self) -> list[Path]:
        return [
            Path(
                f"sign/{NAME}(/(?P<urlalgorithm>[^/]+))?",
                {logical.UPDATE: self.sign},
                synopsis="Generate a signature for input data using the named key",
                description="Generates a signature of the input data using the named key and the given hash algorithm.",
            )
        ]

    def sign(self, req: Request, name: str, urlalgorithm: str = "", **_: str) -> Response:
        data = req.data
        options = sign_options(data, urlalgorithm)
        if data.get("batch_input") is None:
            sign_input(data)
        policy = self.store.get(name)
        if policy is None:
            raise InvalidRequest("signing key not found")
        version = int_field(data, "key_version")

        def one(item: dict[str, Any]) -> ItemResult:
            context = decode_base64("context", item.get("context"))
            signature, used = policy.sign(sign_input(item), options, version, context)
            result: ItemResult = {"signature": signature, "key_version": used}
            if policy.derived:
                # Vault returns the derived public key, which no read of the key shows without the context.
                result["public_key"] = asymmetric.public_key(policy.signing_key(used, context))
            return result

        return run_items(data, one, batch_status=False)
