"""The ``sys/`` paths of operator recovery: rekey and root token generation.

https://developer.hashicorp.com/vault/api-docs/system/rekey
https://developer.hashicorp.com/vault/api-docs/system/generate-root

The state lives with the seal (``core.recovery``, in the node core of the
active node); these paths only translate operations.  ``generate-root`` is
served under Vault's name and under OpenBao's (``generate-root-token``, what
the ``bao`` CLI calls).

Vault serves all of them without a token: anyone who can reach a node can
start, and cancel, the operators' rekey or root generation.  Strongroom asks
for a token with ``sudo`` on the path by default (``core.SUDO_SYS_PATHS``);
the listener settings ``disable_unauthed_rekey_endpoints = false`` and
``disable_unauthed_generate_root_endpoints = false`` (OpenBao's names) restore
Vault's behaviour, for the day nobody holds such a token any more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from strongroom.errors import InvalidRequest
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core

#: Relative ``sys/`` paths of each operation (what the listener settings open up).
REKEY_PATHS = (
    "rekey/init",
    "rekey/update",
    "rekey/verify",
    "rekey-recovery-key/init",
    "rekey-recovery-key/update",
    "rekey-recovery-key/verify",
)
GENERATE_ROOT_PATHS = (
    "generate-root",
    "generate-root/attempt",
    "generate-root/update",
    "generate-root-token/attempt",
    "generate-root-token/update",
)


#: The fields OpenBao's ``generate-root-token`` paths answer (logical_system_generate_root.go):
#: the status without the encoded tokens (nonce and fingerprint once started), the update
#: without ``otp`` and ``encoded_root_token``.
_OPENBAO_STATUS = ("started", "complete", "progress", "required", "otp", "otp_length")
_OPENBAO_UPDATE = ("started", "complete", "progress", "required", "nonce", "encoded_token", "pgp_fingerprint")


def _openbao_fields(action: str, body: dict) -> dict:
    if action == "update":
        return {key: body[key] for key in _OPENBAO_UPDATE}
    fields = _OPENBAO_STATUS + (("nonce", "pgp_fingerprint") if body["started"] else ())
    return {key: body[key] for key in fields}


def recovery_paths(core: Core) -> list[Path]:
    """The path table entries; every handler calls ``core.seal.recovery``."""

    def run(operation: str, action: str, envelope: bool = False) -> Callable[[Request], Response]:
        def handler(req: Request) -> Response:
            body = core.seal.recovery(operation, action, dict(req.data or {}))
            if body is None:
                return Response(status=204)
            if envelope:  # OpenBao's generate-root-token: a logical response, read from "data"
                return Response(data=_openbao_fields(action, body))
            # Vault answers these from plain HTTP handlers: the status body alone, no envelope.
            return Response(raw=body, status=200)

        return handler

    def no_backup(req: Request) -> Response:
        raise InvalidRequest("no backed-up keys found")

    def generate_root(envelope: bool) -> list[Path]:
        name = "generate-root-token" if envelope else "generate-root"
        attempt = "generate-root-token/attempt" if envelope else "generate-root(?:/attempt)?"
        return [
            Path(
                attempt,
                {
                    logical.READ: run("generate-root", "status", envelope),
                    logical.UPDATE: run("generate-root", "init", envelope),
                    logical.DELETE: run("generate-root", "cancel", envelope),
                },
                synopsis="Start, read or cancel the generation of a root token.",
                description="Write an 'otp' of otp_length characters, or nothing to have one generated; "
                f"then submit a threshold of unseal key shares to sys/{name}/update.",
            ),
            Path(
                f"{name}/update",
                {logical.UPDATE: run("generate-root", "update", envelope)},
                synopsis="Submit one unseal key share to the root token generation in progress.",
                description="Write 'key' and 'nonce'; the last share returns the root token XORed with the "
                "OTP (encoded_token; decode it with 'operator generate-root -decode').",
            ),
        ]

    def rekey(name: str, operation: str, keys: str) -> list[Path]:
        return [
            Path(
                f"{name}/init",
                {
                    logical.READ: run(operation, "status"),
                    logical.UPDATE: run(operation, "init"),
                    logical.DELETE: run(operation, "cancel"),
                },
                synopsis=f"Start, read or cancel a rekey of the {keys}.",
                description="Write secret_shares, secret_threshold and optionally require_verification; "
                f"then submit a threshold of the current shares to sys/{name}/update.",
            ),
            Path(
                f"{name}/update",
                {logical.UPDATE: run(operation, "update")},
                synopsis=f"Submit one current share of the {keys} to the rekey in progress.",
                description="Write 'key' and 'nonce'; the last share returns the new shares.",
            ),
            Path(
                f"{name}/verify",
                {
                    logical.READ: run(operation, "verify_status"),
                    logical.UPDATE: run(operation, "verify_update"),
                    logical.DELETE: run(operation, "verify_cancel"),
                },
                synopsis="Verify the new shares of a rekey that requires verification.",
                description="Write 'key' (a NEW share) and the verification 'nonce'; the new key takes effect "
                "once a threshold of new shares was submitted.  DELETE restarts the verification.",
            ),
        ]

    return [
        *rekey("rekey-recovery-key", "rekey-recovery-key", "recovery key (auto seal)"),
        Path(
            "rekey/init",
            {
                logical.READ: run("rekey", "status"),
                logical.UPDATE: run("rekey", "init"),
                logical.DELETE: run("rekey", "cancel"),
            },
            synopsis="Start, read or cancel a rekey of the unseal key.",
            description="Write secret_shares, secret_threshold and optionally require_verification; "
            "then submit a threshold of the current shares to sys/rekey/update.",
        ),
        Path(
            "rekey/update",
            {logical.UPDATE: run("rekey", "update")},
            synopsis="Submit one current unseal key share to the rekey in progress.",
            description="Write 'key' and 'nonce'; the last share returns the new shares.",
        ),
        Path(
            "rekey/verify",
            {
                logical.READ: run("rekey", "verify_status"),
                logical.UPDATE: run("rekey", "verify_update"),
                logical.DELETE: run("rekey", "verify_cancel"),
            },
            synopsis="Verify the new shares of a rekey that requires verification.",
            description="Write 'key' (a NEW share) and the verification 'nonce'; the new key takes effect "
            "once a threshold of new shares was submitted.  DELETE restarts the verification.",
        ),
        Path(
            "rekey/(?:backup|recovery-key-backup)",
            {logical.READ: no_backup, logical.DELETE: lambda req: Response(status=204)},
            synopsis="Backup of the rekeyed keys (PGP-encrypted rekeys only).",
            description="Strongroom does not rekey to PGP keys, so there is never a backup: as Vault "
            "answers when it holds none.",
        ),
        *generate_root(envelope=False),
        *generate_root(envelope=True),
    ]
