"""``decrypt/<name>``: open ``vault:vN:`` ciphertexts, single or ``batch_input``.

https://openbao.org/api-docs/secret/transit/#decrypt-data

Never writes: a performance standby serves it over read-only storage.
"""

from __future__ import annotations

from typing import Any

from strongroom.engines.transit.base import NAME, ItemResult, PathGroup, decode_base64, run_items
from strongroom.engines.transit.policy import Policy, b64
from strongroom.errors import InvalidRequest
from strongroom.fields import to_string
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

#: An item with no other field than these is a plain decryption (``decrypt_item``'s short way).
PLAIN_FIELDS = frozenset({"ciphertext", "reference"})


def decrypt_item(policy: Policy, item: dict[str, Any]) -> bytes:
    """The plaintext of ``item``'s ``ciphertext`` (with its ``context`` and ``associated_data``)."""
    text = item.get("ciphertext")
    if type(text) is str and text and item.keys() <= PLAIN_FIELDS:
        return policy.decrypt(text)  # the common item: no context, no associated data to decode
    ciphertext = to_string("ciphertext", item.get("ciphertext"))
    if not ciphertext:
        raise InvalidRequest("missing ciphertext to decrypt")
    context = decode_base64("context", item.get("context"))
    associated = decode_base64("associated_data", item.get("associated_data"))
    return policy.decrypt(ciphertext, context=context, associated_data=associated or None)


class DecryptPath(PathGroup):
    """``POST decrypt/<name>``."""

    def paths(self) -> list[Path]:
        return [
            Path(
                f"decrypt/{NAME}",
                {logical.UPDATE: self.decrypt},
                synopsis="Decrypt a ciphertext value using a named key",
                description="This path uses the named key from the request path to decrypt a user provided "
                "ciphertext. The plaintext is returned base64 encoded.",
            )
        ]

    def decrypt(self, req: Request, name: str, **_: str) -> Response:
        data = req.data
        if data.get("batch_input") is None and not to_string("ciphertext", data.get("ciphertext")):
            raise InvalidRequest("missing ciphertext to decrypt")
        policy = self.existing(name)

        def one(item: dict[str, Any]) -> ItemResult:
            return {"plaintext": b64(decrypt_item(policy, item))}

        return run_items(data, one, error_fields={"plaintext": ""})
