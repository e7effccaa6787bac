"""``encrypt/<name>``: seal base64 plaintext under a key, single or ``batch_input``.

https://openbao.org/api-docs/secret/transit/#encrypt-data

A missing key is created first (Vault's upsert; derived when the request
carries a ``context``): that write is the only one, so encrypting with an
existing key never writes and a performance standby serves it.
"""

from __future__ import annotations

from typing import Any

from strongroom.engines.transit.base import (
    NAME,
    ItemResult,
    PathGroup,
    batch_items,
    decode_base64,
    int_field,
    run_items,
)
from strongroom.engines.transit.path_keys import new_policy
from strongroom.engines.transit.policy import Policy, b64decode
from strongroom.errors import InvalidRequest
from strongroom.fields import to_string
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

#: An item with no other field than these is a plain encryption (``encrypt_item``'s short way).
PLAIN_FIELDS = frozenset({"plaintext", "reference"})


def encrypt_item(policy: Policy, item: dict[str, Any], random_bytes: Any) -> ItemResult:
    """One encryption: ``plaintext``, ``context``, ``key_version``, ``associated_data`` of ``item``."""
    text = item.get("plaintext")
    if type(text) is str and item.keys() <= PLAIN_FIELDS:
        # The common item (a batch of them is most of a batch request's work): what the
        # general way below does for it, without looking up four absent fields.
        try:
            plaintext = b64decode(text) if text else b""
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        ciphertext, version = policy.encrypt(plaintext, random_bytes=random_bytes)
        return {"ciphertext": ciphertext, "key_version": version}
    if "plaintext" not in item or item["plaintext"] is None:
        raise InvalidRequest("missing plaintext to encrypt")
    plaintext = decode_base64("plaintext", item["plaintext"])
    context = decode_base64("context", item.get("context"))
    if to_string("nonce", item.get("nonce")):
        raise InvalidRequest("nonce provided when not allowed")
    associated = decode_base64("associated_data", item.get("associated_data"))
    ciphertext, version = policy.encrypt(
        plaintext,
        context=context,
        version=int_field(item, "key_version"),
        associated_data=associated or None,
        random_bytes=random_bytes,
    )
    return {"ciphertext": ciphertext, "key_version": version}


class EncryptPath(PathGroup):
    """``POST encrypt/<name>``."""

    def paths(self) -> list[Path]:
        return [
            Path(
                f"encrypt/{NAME}",
                {logical.UPDATE: self.encrypt},
                exists=self.exists,
                synopsis="Encrypt a plaintext value or a batch of plaintext blocks using a named key",
                description="This path uses the named key from the request path to encrypt a user provided "
                "plaintext or a batch of plaintext blocks. The plaintext must be base64 encoded.",
            )
        ]

    def exists(self, req: Request, name: str, **_: str) -> bool:
        return self.store.get(name) is not None

    def encrypt(self, req: Request, name: str, **_: str) -> Response:
        """Encrypt, creating the key first when it does not exist."""
        data = req.data
        items = batch_items(data)
        first = items[0] if items else data
        if items is None and data.get("plaintext") is None:
            raise InvalidRequest("missing plaintext to encrypt")
        policy = self.store.get(name)
        index = 0
        if policy is None:
            derived = bool(to_string("context", first.get("context")))
            fresh = new_policy(name, data, derived=derived)

            def create(current: Policy | None) -> Policy | None:
                if current is not None:
                    return None
                fresh.rotate(self.clock(), self.random_bytes)
                return fresh

            policy, index = self.store.update(name, create)
            assert policy is not None
        key = policy
        response = run_items(data, lambda item: encrypt_item(key, item, self.random_bytes))
        response.index = index
        return response
