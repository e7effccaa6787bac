"""``hmac/<name>(/<algorithm>)`` and ``verify/<name>(/<algorithm>)`` of an HMAC.

https://openbao.org/api-docs/secret/transit/#generate-hmac
https://openbao.org/api-docs/secret/transit/#verify-signed-data

The HMAC key of each version is its own 32 random bytes (``hmac_key``, what
``export/hmac-key`` returns), never the encryption key.  Neither path writes.
"""

from __future__ import annotations

from typing import Any

from strongroom.engines.transit.base import NAME, ItemResult, PathGroup, decode_base64, int_field, run_items
from strongroom.engines.transit.path_sign import sign_options
from strongroom.engines.transit.policy import HASHES
from strongroom.errors import InvalidRequest
from strongroom.fields import to_string
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

DEFAULT_ALGORITHM = "sha2-256"


def algorithm(data: dict[str, Any], in_path: str) -> str:
    """The hash algorithm: from the path, else ``algorithm`` (or ``hash_algorithm``), else sha2-256."""
    name = (
        in_path
        or to_string("algorithm", data.get("algorithm"))
        or to_string("hash_algorithm", data.get("hash_algorithm"))
        or DEFAULT_ALGORITHM
    )
    if name not in HASHES:
        raise InvalidRequest(f"unsupported algorithm {name}")
    return name


def hmac_input(item: dict[str, Any]) -> bytes:
    """``input`` (base64) of an HMAC request or batch item."""
    if item.get("input") in (None, ""):
        raise InvalidRequest("missing input for HMAC")
    return decode_base64("input", item["input"], "unable to decode input as base64: ")


class HmacPath(PathGroup):
    """``POST hmac/<name>(/<algorithm>)`` and ``POST verify/<name>(/<algorithm>)``."""

    def paths(self) -> list[Path]:
        return [
            Path(
                f"hmac/{NAME}(/(?P<urlalgorithm>[^/]+))?",
                {logical.UPDATE: self.hmac},
                synopsis="Generate an HMAC for input data using the named key",
                description="Generates an HMAC sum of the given algorithm and key for the input data.",
            ),
            Path(
                f"verify/{NAME}(/(?P<urlalgorithm>[^/]+))?",
                {logical.UPDATE: self.verify},
                synopsis="Verify a signature or HMAC for input data created using the named key",
                description="Verifies a signature or HMAC of the given algorithm and key for the input data.",
            ),
        ]

    def hmac(self, req: Request, name: str, urlalgorithm: str = "", **_: str) -> Response:
        data = req.data
        hash_name = algorithm(data, urlalgorithm)
        if data.get("batch_input") is None:
            hmac_input(data)
        policy = self.existing(name)
        version = int_field(data, "key_version")

        def one(item: dict[str, Any]) -> ItemResult:
            return {"hmac": policy.hmac(hmac_input(item), hash_name, version)}

        return run_items(data, one, batch_status=False)

    def verify(self, req: Request, name: str, urlalgorithm: str = "", **_: str) -> Response:
        data = req.data
        hash_name = algorithm(data, urlalgorithm) if not data.get("signature") else ""
        if data.get("batch_input") is None:
            if not data.get("hmac") and not data.get("signature"):
                raise InvalidRequest("neither a 'signature' nor an 'hmac' were given to verify")
            if data.get("hmac") and data.get("signature"):
                raise InvalidRequest("provide one of 'signature' or 'hmac'")
        policy = self.existing(name)

        def one(item: dict[str, Any]) -> ItemResult:
            signature = to_string("signature", item.get("signature"))
            if signature:
                options = sign_options(data, urlalgorithm)
                context = decode_base64("context", item.get("context"))
                return {"valid": policy.verify_signature(hmac_input(item), signature, options, context)}
            given = to_string("hmac", item.get("hmac"))
            if not given:
                raise InvalidRequest("missing hmac value to verify")
            return {"valid": policy.verify_hmac(hmac_input(item), hash_name, given)}

        return run_items(data, one, batch_status=False)
