"""Operator recovery: rekey the unseal key, generate a new root token.

The state behind Vault's ``sys/rekey/init|update|verify`` and
``sys/generate-root/attempt|update`` (OpenBao's CLI says
``sys/generate-root-token/...``):

https://developer.hashicorp.com/vault/api-docs/system/rekey
https://developer.hashicorp.com/vault/api-docs/system/generate-root

Both collect a threshold of the *current* unseal key's shares, prove them
against storage (they must decrypt the stored root key) and then act: a rekey
re-encrypts the root key under a new unseal key split into new shares (the
keyring, and so every stored value, is untouched); a root generation mints a
root token and returns it XORed with a one-time password the operator holds.
Like the unseal progress, the submitted shares live only in the memory of the
node core of the active node (``SealManager``'s process) and are dropped as
soon as they were combined.

With an auto seal (``seal "transit"``) the operators hold recovery keys
instead: ``sys/rekey-recovery-key/*`` (operation ``"rekey-recovery-key"``)
rekeys them the same way (the new recovery key is stored seal-wrapped), and a
root generation takes a threshold of recovery key shares, proven against the
stored recovery key.  ``sys/rekey/*`` has nothing to rekey then, and the
recovery paths have nothing to rekey under the Shamir seal: both refuse, as
Vault does.

With ``require_verification`` a rekey does not take effect when the old shares
are complete: the new shares are returned, and only once a threshold of *them*
is submitted to ``sys/rekey/verify`` does the new key replace the old one, so a
mistake in handing them out cannot lock the cluster.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable

from strongroom.auth.token_entry import SERVICE_TOKEN_PREFIX, TOKEN_LENGTH, random_base62
from strongroom.barrier import shamir
from strongroom.core.seal import SealManager, decode_share, validate_seal_parameters
from strongroom.errors import InvalidRequest

#: Vault's ``otp_length`` for a root namespace with ``hvs.`` tokens: the OTP is
#: exactly as long as the token it hides.
OTP_LENGTH = len(SERVICE_TOKEN_PREFIX) + TOKEN_LENGTH


def _new_nonce(randbytes: Callable[[int], bytes]) -> str:
    return str(uuid.UUID(bytes=randbytes(16)))


def _refuse_pgp(params: dict, *names: str) -> None:
    for name in names:
        if params.get(name):
            raise InvalidRequest(f"{name} is not supported by Strongroom")


def _string(params: dict, name: str) -> str:
    value = params.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string")
    return value


def _share(params: dict) -> bytes:
    key = params.get("key")
    if key is None or key == "":
        raise InvalidRequest("'key' must be specified in request body as JSON")
    if not isinstance(key, str):
        raise InvalidRequest("'key' must be a valid hex or base64 string")
    return decode_share(key)


def encode_root_token(token: str, otp: str) -> str:
    """Vault's ``roottoken.EncodeToken``: the token XOR the OTP, unpadded base64."""
    if len(token) != len(otp):
        raise InvalidRequest("OTP string has incorrect length")
    mixed = bytes(a ^ b for a, b in zip(token.encode(), otp.encode(), strict=True))
    return base64.b64encode(mixed).decode().rstrip("=")


def decode_root_token(encoded: str, otp: str) -> str:
    """The inverse of ``encode_root_token`` (what ``operator generate-root -decode`` does)."""
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    if len(raw) != len(otp):
        raise InvalidRequest("OTP string has incorrect length")
    return bytes(a ^ b for a, b in zip(raw, otp.encode(), strict=True)).decode()


class Rekey:
    """``sys/rekey/*`` (``recovery`` False) or ``sys/rekey-recovery-key/*`` (True):
    one rekey operation at a time, with optional verification."""

    def __init__(self, seal: SealManager, randbytes: Callable[[int], bytes], recovery: bool = False) -> None:
        self._seal = seal
        self._randbytes = randbytes
        self._recovery = recovery
        self._lock = threading.Lock()
        self._config: dict | None = None  # shares, threshold, nonce, verification_required
        self._progress: list[bytes] = []
        # Set once the old shares were proven and verification is required:
        self._pending: tuple[bytes, bytes] | None = None  # (root key, new unseal key)
        self._verification_nonce = ""
        self._verification_progress: list[bytes] = []

    def _required(self) -> int:
        config = self._seal.seal_config()
        if config is None:
            raise InvalidRequest("server is not yet initialized")
        if self._recovery and not self._seal.recovery_seal:
            raise InvalidRequest("recovery rekeying not supported")
        if not self._recovery and self._seal.recovery_seal:
            raise InvalidRequest(
                f"seal type {config.get('type')} has no unseal keys: rekey the recovery keys "
                "(sys/rekey-recovery-key, operator rekey -target=recovery)"
            )
        return int(config["recovery_threshold" if self._recovery else "secret_threshold"])

    def _prove(self, shares: list[bytes]) -> bytes:
        """The old shares checked: the root key (unseal key rekey) or the recovery key."""
        if self._recovery:
            return self._seal.prove_recovery_shares(shares, "recovery key verification failed")
        return self._seal.prove_shares(shares, "root key verification failed")

    def _replace(self, proof: bytes, new_key: bytes, shares: int, threshold: int) -> None:
        if self._recovery:
            self._seal.replace_recovery_key(new_key, shares, threshold)
        else:
            self._seal.replace_unseal_key(proof, new_key, shares, threshold)

    def status(self) -> dict:
        required = self._required()
        with self._lock:
            return self._status_locked(required)

    def _status_locked(self, required: int) -> dict:
        config = self._config
        body: dict = {
            "nonce": "",
            "started": False,
            "t": 0,
            "n": 0,
            "progress": 0,
            "required": required,
            "pgp_fingerprints": None,
            "backup": False,
            "verification_required": False,
        }
        if config is not None:
            body.update(
                nonce=config["nonce"],
                started=True,
                t=config["threshold"],
                n=config["shares"],
                progress=len(self._progress),
                verification_required=config["verification_required"],
            )
            if self._verification_nonce:
                body["verification_nonce"] = self._verification_nonce
        return body

    def init(self, params: dict) -> dict:
        _refuse_pgp(params, "pgp_keys", "backup")
        shares, threshold = validate_seal_parameters(params.get("secret_shares"), params.get("secret_threshold"))
        verification = params.get("require_verification", False)
        if not isinstance(verification, bool):
            raise InvalidRequest("'require_verification' must be a boolean")
        self._required()
        with self._lock:
            if self._config is not None:
                raise InvalidRequest("rekey already in progress")
            self._config = {
                "shares": shares,
                "threshold": threshold,
                "nonce": _new_nonce(self._randbytes),
                "verification_required": verification,
            }
            self._progress = []
        return self.status()

    def cancel(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._config, self._progress, self._pending = None, [], None
        self._verification_nonce, self._verification_progress = "", []

    def update(self, params: dict) -> dict:
        share, nonce = _share(params), _string(params, "nonce")
        required = self._required()
        with self._lock:
            config = self._config
            if config is None:
                raise InvalidRequest(f"no {'recovery' if self._recovery else 'barrier'} rekey in progress")
            if self._pending is not None:
                raise InvalidRequest(
                    "rekey operation already finished; verification must be performed; "
                    f'nonce for the verification operation is "{self._verification_nonce}"'
                )
            if nonce != config["nonce"]:
                raise InvalidRequest(f'incorrect nonce supplied; nonce for this rekey operation is "{config["nonce"]}"')
            if share in self._progress:
                raise InvalidRequest("given key has already been provided during this generation operation")
            self._progress.append(share)
            if len(self._progress) < required:
                return self._status_locked(required)
            # As in Vault, the submitted shares are spent whatever happens next; the
            # operation (its nonce) stays, so wrong shares mean starting the count again.
            shares, self._progress = self._progress, []
            proof = self._prove(shares)
            new_key, new_shares = self._seal.new_unseal_key(config["shares"], config["threshold"])
            result: dict = {
                "nonce": config["nonce"],
                "complete": True,
                "keys": [s.hex() for s in new_shares],
                "keys_base64": [base64.b64encode(s).decode() for s in new_shares],
                "pgp_fingerprints": None,
                "backup": False,
                "verification_required": config["verification_required"],
            }
            if config["verification_required"]:
                self._pending = (proof, new_key)
                self._verification_nonce = _new_nonce(self._randbytes)
                result["verification_nonce"] = self._verification_nonce
            else:
                self._replace(proof, new_key, config["shares"], config["threshold"])
                self._clear()
            return result

    def verify_status(self) -> dict:
        self._required()
        with self._lock:
            return self._verify_status_locked()

    def _verify_status_locked(self) -> dict:
        config = self._config
        if config is None:
            raise InvalidRequest("no rekey configuration found")
        return {
            "nonce": self._verification_nonce,
            "started": self._pending is not None,
            "t": config["threshold"],
            "n": config["shares"],
            "progress": len(self._verification_progress),
        }

    def verify_update(self, params: dict) -> dict:
        share, nonce = _share(params), _string(params, "nonce")
        with self._lock:
            config, pending = self._config, self._pending
            if config is None or pending is None:
                raise InvalidRequest("no rekey verification in progress")
            if nonce != self._verification_nonce:
                raise InvalidRequest(
                    f'incorrect nonce supplied; nonce for this verify operation is "{self._verification_nonce}"'
                )
            if share in self._verification_progress:
                raise InvalidRequest("given key has already been provided during this verify operation")
            self._verification_progress.append(share)
            if len(self._verification_progress) < config["threshold"]:
                return self._verify_status_locked()
            shares, self._verification_progress = self._verification_progress, []
            proof, new_key = pending
            if _combine(shares, config["shares"]) != new_key:
                raise InvalidRequest("rekey verification failed; incorrect key shares supplied")
            self._replace(proof, new_key, config["shares"], config["threshold"])
            verification_nonce = self._verification_nonce
            self._clear()
            return {"nonce": verification_nonce, "complete": True}

    def verify_cancel(self) -> dict:
        """Restart verification: new nonce, no progress; the new shares stay the same."""
        with self._lock:
            if self._config is None or self._pending is None:
                raise InvalidRequest("no rekey verification in progress")
            self._verification_nonce = _new_nonce(self._randbytes)
            self._verification_progress = []
        return self.verify_status()


def _combine(shares: list[bytes], count: int) -> bytes:
    """The key ``shares`` of a ``count``-share split combine to (one share is the key)."""
    return shares[0] if count == 1 else shamir.combine(shares)


class RootGeneration:
    """``sys/generate-root/*``: one root token generation at a time, OTP-encoded."""

    def __init__(self, seal: SealManager, randbytes: Callable[[int], bytes]) -> None:
        self._seal = seal
        self._randbytes = randbytes
        self._lock = threading.Lock()
        self._nonce = ""
        self._otp = ""
        self._progress: list[bytes] = []

    def _required(self) -> int:
        return self._seal.operator_threshold()

    def status(self, otp: str = "") -> dict:
        required = self._required()
        with self._lock:
            return {
                "nonce": self._nonce,
                "started": bool(self._nonce),
                "progress": len(self._progress),
                "required": required,
                "complete": False,
                "encoded_token": "",
                "encoded_root_token": "",
                "pgp_fingerprint": "",
                "otp": otp,
                "otp_length": OTP_LENGTH,
            }

    def init(self, params: dict) -> dict:
        _refuse_pgp(params, "pgp_key")
        otp = _string(params, "otp")
        generated = not otp
        if generated:
            otp = random_base62(self._randbytes, OTP_LENGTH)
        elif len(otp) != OTP_LENGTH:
            raise InvalidRequest("OTP string has incorrect length")
        self._required()
        with self._lock:
            if self._nonce:
                raise InvalidRequest("root generation already in progress")
            self._nonce, self._otp, self._progress = _new_nonce(self._randbytes), otp, []
        return self.status(otp if generated else "")

    def cancel(self) -> None:
        with self._lock:
            self._nonce, self._otp, self._progress = "", "", []

    def update(self, params: dict) -> dict:
        share, nonce = _share(params), _string(params, "nonce")
        required = self._required()
        with self._lock:
            if not self._nonce:
                raise InvalidRequest("no root generation in progress")
            if nonce != self._nonce:
                raise InvalidRequest(
                    f'incorrect nonce supplied; nonce for this root generation operation is "{self._nonce}"'
                )
            if share in self._progress:
                raise InvalidRequest("given key has already been provided during this generation operation")
            self._progress.append(share)
            progress = len(self._progress)
            body = {
                "nonce": nonce,
                "started": True,
                "progress": progress,
                "required": required,
                "complete": False,
                "encoded_token": "",
                "encoded_root_token": "",
                "pgp_fingerprint": "",
            }
            if progress < required:
                return body
            # As in Vault, the shares are spent whatever happens next; the attempt (its
            # nonce and OTP) ends only when it succeeds or is cancelled.
            shares, self._progress = self._progress, []
            self._seal.prove_operator_shares(shares, "root generation aborted")
            encoded = encode_root_token(self._seal.mint_root_token(), self._otp)
            self._nonce, self._otp = "", ""
        return {**body, "complete": True, "encoded_token": encoded, "encoded_root_token": encoded}


class Recovery:
    """Both operations of one node, dispatched by name (``SealControl.recovery``):
    the node link carries ``(operation, action, params)`` from a worker to the node core."""

    def __init__(self, seal: SealManager, randbytes: Callable[[int], bytes]) -> None:
        root = RootGeneration(seal, randbytes)
        self._actions: dict[tuple[str, str], Callable[[dict], dict | None]] = {
            ("generate-root", "status"): lambda params: root.status(),
            ("generate-root", "init"): root.init,
            ("generate-root", "cancel"): lambda params: root.cancel(),
            ("generate-root", "update"): root.update,
        }
        for operation, rekey in (
            ("rekey", Rekey(seal, randbytes)),
            ("rekey-recovery-key", Rekey(seal, randbytes, recovery=True)),
        ):
            self._actions.update(_rekey_actions(operation, rekey))

    def run(self, operation: str, action: str, params: dict) -> dict | None:
        handler = self._actions.get((operation, action))
        if handler is None:
            raise InvalidRequest(f"unknown recovery action: {operation} {action}")
        if not isinstance(params, dict):
            raise InvalidRequest("parameters must be a JSON object")
        return handler(params)


def _rekey_actions(operation: str, rekey: Rekey) -> dict[tuple[str, str], Callable[[dict], dict | None]]:
    """The seven actions of one rekey operation (of the unseal key, or of the recovery key)."""
    return {
        (operation, "status"): lambda params: rekey.status(),
        (operation, "init"): rekey.init,
        (operation, "cancel"): lambda params: rekey.cancel(),
        (operation, "update"): rekey.update,
        (operation, "verify_status"): lambda params: rekey.verify_status(),
        (operation, "verify_update"): rekey.verify_update,
        (operation, "verify_cancel"): lambda params: rekey.verify_cancel(),
    }
