"""``keys`` and ``keys/<name>``: create, read, list and delete transit keys.

https://openbao.org/api-docs/secret/transit/#create-key
https://openbao.org/api-docs/secret/transit/#read-key
https://openbao.org/api-docs/secret/transit/#list-keys
https://openbao.org/api-docs/secret/transit/#delete-key
"""

from __future__ import annotations

from strongroom.engines.transit.base import NAME, PathGroup, decode_base64, int_field, read_response
from strongroom.engines.transit.policy import (
    DEFAULT_TYPE,
    HMAC_KEY_SIZES,
    HMAC_TYPE,
    KEY_TYPES,
    SYMMETRIC_TYPES,
    Policy,
)
from strongroom.errors import InvalidRequest
from strongroom.fields import to_bool, to_duration_seconds, to_string
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

#: Vault's floor for automatic rotation (0 disables it).
MIN_AUTO_ROTATE_SECONDS = 3600


def auto_rotate_seconds(value: object) -> int:
    """``auto_rotate_period``: 0, or at least an hour."""
    seconds = to_duration_seconds("auto_rotate_period", value)
    if seconds != 0 and seconds < MIN_AUTO_ROTATE_SECONDS:
        raise InvalidRequest("auto rotate period must be 0 to disable or at least an hour")
    return seconds


def new_policy(name: str, data: dict[str, object], *, derived: bool | None = None) -> Policy:
    """A key named ``name`` with the settings of a create request (``derived`` overrides the field)."""
    key_type = to_string("type", data.get("type")) or DEFAULT_TYPE
    if key_type not in KEY_TYPES:
        raise InvalidRequest(f"unknown key type {key_type}")
    policy = Policy(
        name=name,
        type=key_type,
        derived=to_bool("derived", data.get("derived")) if derived is None else derived,
        convergent_encryption=to_bool("convergent_encryption", data.get("convergent_encryption")),
        exportable=to_bool("exportable", data.get("exportable")),
        allow_plaintext_backup=to_bool("allow_plaintext_backup", data.get("allow_plaintext_backup")),
        auto_rotate_period=auto_rotate_seconds(data.get("auto_rotate_period", 0)),
    )
    key_size = int_field(data, "key_size")
    if key_size and key_type != HMAC_TYPE:
        raise InvalidRequest(f"key_size is not valid for algorithm {key_type}")
    if key_size and key_size not in HMAC_KEY_SIZES:
        raise InvalidRequest(f"invalid key_size {key_size}")
    policy.key_size = key_size
    if policy.convergent_encryption and not policy.derived:
        raise InvalidRequest("convergent encryption requires derivation to be enabled")
    if policy.derived and key_type not in SYMMETRIC_TYPES and key_type != "ed25519":
        raise InvalidRequest(f"key derivation and convergent encryption not supported for keys of type {key_type}")
    if policy.convergent_encryption and key_type not in SYMMETRIC_TYPES:
        raise InvalidRequest(f"convergent encryption not supported for keys of type {key_type}")
    return policy


class KeysPath(PathGroup):
    """The key table: ``LIST keys``, and ``keys/<name>`` written (created once), read and deleted."""

    def paths(self) -> list[Path]:
        return [
            Path(
                "keys/?",
                {logical.LIST: self.list},
                synopsis="Managed named encryption keys",
                description="This path is used to list the named keys that are available for use.",
            ),
            Path(
                "keys/" + NAME,
                # No existence check, as in Vault: "update" on the path may create a key.
                {logical.UPDATE: self.write, logical.READ: self.read, logical.DELETE: self.delete},
                synopsis="Managed named encryption keys",
                description="This path is used to manage the named keys that are available. Doing a write with "
                "no value against a new named key will create it using a randomly generated key.",
            ),
        ]

    def list(self, req: Request) -> Response | None:
        """``LIST keys``: the names, or 404 when there are none (Vault's empty list)."""
        names = self.store.names()
        return Response(data={"keys": names}) if names else None

    def read(self, req: Request, name: str, **_: str) -> Response | None:
        """``GET keys/<name>``."""
        policy = self.store.get(name)
        context = decode_base64("context", req.data.get("context"))
        return None if policy is None else Response(data=policy.render(context))

    def write(self, req: Request, name: str, **_: str) -> Response:
        """``POST keys/<name>``: create the key unless it exists; answer with the key either way."""
        fresh = new_policy(name, req.data)

        def create(current: Policy | None) -> Policy | None:
            if current is not None:
                return None
            fresh.rotate(self.clock(), self.random_bytes)
            return fresh

        policy, index = self.store.update(name, create)
        assert policy is not None
        return read_response(policy, index)

    def delete(self, req: Request, name: str, **_: str) -> Response:
        """``DELETE keys/<name>``: only a key whose config allows it."""
        policy = self.store.get(name)
        if policy is None:
            raise InvalidRequest(f"error deleting policy {name}: could not delete key; not found")
        if not policy.deletion_allowed:
            raise InvalidRequest(f"error deleting policy {name}: deletion is not allowed for this key")
        return Response(index=self.store.delete(name))
