"""``datakey/plaintext|wrapped/<name>``: a fresh data key, encrypted under a named key.

https://openbao.org/api-docs/secret/transit/#generate-data-key
"""

from __future__ import annotations

from strongroom.engines.transit.base import NAME, PathGroup, decode_base64, int_field
from strongroom.engines.transit.policy import b64
from strongroom.errors import InvalidRequest
from strongroom.fields import to_string
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

BITS = (128, 256, 512)


class DatakeyPath(PathGroup):
    """``POST datakey/<plaintext|wrapped>/<name>`` with ``bits`` (128, 256, 512), ``context``, ``key_version``."""

    def paths(self) -> list[Path]:
        return [
            Path(
                f"datakey/(?P<plaintext>[^/]+)/{NAME}",
                {logical.UPDATE: self.datakey},
                synopsis="Generate a data key",
                description="This path can be used to generate a data key: a random key of a certain length "
                "that can be used for encryption and decryption, protected by the named backend key.",
            )
        ]

    def datakey(self, req: Request, plaintext: str, name: str, **_: str) -> Response:
        if plaintext not in ("plaintext", "wrapped"):
            raise InvalidRequest("Invalid path, must be 'plaintext' or 'wrapped'")
        data = req.data
        bits = int_field(data, "bits", 256)
        if bits not in BITS:
            raise InvalidRequest("invalid bit length")
        if to_string("nonce", data.get("nonce")):
            raise InvalidRequest("nonce provided when not allowed")
        policy = self.existing(name)
        key = self.random_bytes(bits // 8)
        ciphertext, version = policy.encrypt(
            key,
            context=decode_base64("context", data.get("context")),
            version=int_field(data, "key_version"),
            random_bytes=self.random_bytes,
        )
        result = {"ciphertext": ciphertext, "key_version": version}
        if plaintext == "plaintext":
            result["plaintext"] = b64(key)
        return Response(data=result)
