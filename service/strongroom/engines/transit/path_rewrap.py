"""``rewrap/<name>``: decrypt and encrypt again under the latest (or a given) key version.

https://openbao.org/api-docs/secret/transit/#rewrap-data

Never writes: the plaintext never leaves the engine.
"""

from __future__ import annotations

from typing import Any

from strongroom.engines.transit.base import NAME, ItemResult, PathGroup, decode_base64, int_field, run_items
from strongroom.engines.transit.path_decrypt import decrypt_item
from strongroom.errors import InvalidRequest
from strongroom.fields import to_string
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response


class RewrapPath(PathGroup):
    """``POST rewrap/<name>``."""

    def paths(self) -> list[Path]:
        return [
            Path(
                f"rewrap/{NAME}",
                {logical.UPDATE: self.rewrap},
                synopsis="Rewrap ciphertext",
                description="After key rotation, this function can be used to rewrap the given ciphertext or "
                "a batch of given ciphertext blocks with the latest version of the named key.",
            )
        ]

    def rewrap(self, req: Request, name: str, **_: str) -> Response:
        data = req.data
        if data.get("batch_input") is None and not to_string("ciphertext", data.get("ciphertext")):
            raise InvalidRequest("missing ciphertext to decrypt")
        policy = self.existing(name)

        def one(item: dict[str, Any]) -> ItemResult:
            plaintext = decrypt_item(policy, item)
            associated = decode_base64("associated_data", item.get("associated_data"))
            ciphertext, version = policy.encrypt(
                plaintext,
                context=decode_base64("context", item.get("context")),
                version=int_field(item, "key_version"),
                associated_data=associated or None,
                random_bytes=self.random_bytes,
            )
            return {"ciphertext": ciphertext, "key_version": version}

        return run_items(data, one)
