"""The Shamir seal: initialisation, unseal progress, seal, and keyring rotation.

Implements the state behind Vault's ``sys/init``, ``sys/unseal``,
``sys/seal-status``, ``sys/seal``, ``sys/rotate`` and ``sys/key-status``
(https://developer.hashicorp.com/vault/api-docs/system/init and siblings).

Key hierarchy, stored under the storage backend (not the barrier, which cannot
decrypt anything before the keyring is known):

* ``core/seal-config``: plaintext JSON (shares, threshold, nonce);
* ``core/root-key``: the root key, AES-256-GCM under the *unseal key* (the value
  the Shamir shares combine to), associated data = its path;
* ``core/keyring``: the keyring (root key + term keys), AES-256-GCM under the
  root key, associated data = its path.

With an *auto seal* (``seal "transit"``, ``core.seal_transit``) the root key is
protected by the seal instead of an unseal key (``AutoSeal.wrap``, its path as
associated data), the node unseals itself (``auto_unseal``) and the operators
hold *recovery keys*: a random key split with Shamir, kept seal-wrapped at
``core/recovery-key``, that authorises rekey (``sys/rekey-recovery-key``),
root token generation and ``sys/unseal`` after a manual seal, but cannot open
anything by itself (Vault's recovery seal).  Its share count and threshold
are ``recovery_shares``/``recovery_threshold`` in ``core/seal-config``.

A ``SealManager`` holds the unseal progress and the keyring in process memory
only.  In a multi-process node exactly one lives in the node core process and
workers reach it through ``server.nodelink``; unit tests and in-memory dev nodes
use it directly.  The same interface, ``SealControl``, serves both; what a
``Core`` is handed, ``NodeControl``, adds the node's HA state (``HAControl``):
the node link carries the node core's, a bare ``SealManager`` answers "HA
disabled" (a single-process node is its own active node).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from strongroom.barrier import Barrier, BarrierView, aead, shamir
from strongroom.barrier.keyring import Keyring
from strongroom.errors import (
    AlreadyInitialized,
    IntegrityError,
    InvalidRequest,
    NotInitialized,
    Sealed,
)
from strongroom.metrics_vault import cluster_label
from strongroom.storage import Backend, TxnOp

if TYPE_CHECKING:
    from strongroom.core.recovery import Recovery

SEAL_CONFIG_PATH = "core/seal-config"
ROOT_KEY_PATH = "core/root-key"
KEYRING_PATH = "core/keyring"
RECOVERY_KEY_PATH = "core/recovery-key"

VERSION = "1.17.0+strongroom"
BUILD_DATE = "2026-11-25T00:00:00Z"


class SealControl(Protocol):
    """What the core needs of the seal, wherever the keys actually live."""

    def status(self) -> dict:
        """Vault's ``sys/seal-status`` body."""

    def initialize(
        self,
        shares: int,
        threshold: int,
        root_token_id: str = "",
        recovery_shares: int = 0,
        recovery_threshold: int = 0,
    ) -> dict:
        """Initialise storage and mint the root token; returns Vault's ``sys/init``
        body (``keys``, ``keys_base64``, ``root_token``).  The node stays sealed.
        With an auto seal, ``shares``/``threshold`` are ignored, the recovery key
        is split into ``recovery_shares`` (``recovery_keys`` in the body) and the
        node unseals itself at once, as Vault does."""

    def unseal(self, key: str | None, reset: bool = False) -> dict:
        """Submit one share (hex or base64); returns the seal status."""

    def seal(self) -> None:
        """Forget the keyring and any unseal progress."""

    def rotate(self) -> Keyring:
        """Add a new keyring term and make it active."""

    def keyring(self) -> Keyring | None:
        """The current keyring, None while sealed."""

    def recovery(self, operation: str, action: str, params: dict) -> dict | None:
        """``sys/rekey/*`` (operation ``"rekey"``) and ``sys/generate-root/*``
        (``"generate-root"``): see ``core.recovery.Recovery``."""


class AutoSeal(Protocol):
    """What protects the root key instead of the Shamir unseal key (Vault's
    ``seal.Access`` of an auto seal), e.g. ``core.seal_transit.TransitSeal``.

    ``wrap`` and ``unwrap`` may do network I/O and raise ``StorageUnavailable``
    when the protector cannot be reached; ``unwrap`` raises ``IntegrityError``
    when ``stored`` was not made by ``wrap`` for the same ``path``."""

    type: str

    def wrap(self, plaintext: bytes, path: str) -> bytes:
        """The value to store at ``path`` for ``plaintext``."""

    def unwrap(self, stored: bytes, path: str) -> bytes:
        """The plaintext ``wrap`` was given for ``path``."""


class HAControl(Protocol):
    """The node's HA state as a core sees it (https://developer.hashicorp.com/vault/docs/concepts/ha).

    Answered from what the node core last pushed (no I/O) except ``step_down``
    and ``ha_status``, which ask the node core.  Nodes without HA (in-memory
    storage, one process) answer "disabled" and are always active."""

    def ha(self) -> dict:
        """``{"enabled", "role", "leader_address", "leader_node", "active_time", ...}``;
        ``enabled`` false (or an empty dict, before the node core spoke) means no HA."""

    def step_down(self) -> None:
        """``sys/step-down``: give up the lock (the active node only; a no-op without HA)."""

    def ha_status(self) -> dict:
        """``sys/ha-status`` body: ``{"nodes": [...]}`` (empty without HA)."""

    def await_ha_change(self, seen: dict, timeout: float) -> dict:
        """The HA state once it differs from ``seen``, or after ``timeout`` seconds
        (at once without HA)."""


class NodeControl(SealControl, HAControl, Protocol):
    """What a ``Core`` is handed: the node's seal and its HA state
    (``SealManager`` for a single-process node, ``server.nodelink.NodeLink`` in a worker)."""


#: What a node without HA reports: it is its own active node.
HA_DISABLED = {"enabled": False, "role": "active"}


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer")
    return value


def validate_recovery_parameters(shares: object, threshold: object) -> tuple[int, int]:
    """Check ``recovery_shares``/``recovery_threshold`` as Vault does: zero shares
    (no recovery key at all) is allowed, otherwise the Shamir rules apply."""
    shares = 0 if shares is None else _integer("recovery_shares", shares)
    threshold = 0 if threshold is None else _integer("recovery_threshold", threshold)
    if shares < 0 or threshold < 0:
        raise InvalidRequest("invalid recovery configuration: shares and threshold cannot be negative")
    if shares == 0 and threshold == 0:
        return 0, 0
    if threshold < 1:
        raise InvalidRequest("invalid recovery configuration: threshold must be at least one")
    if shares > 1 and threshold < 2:
        raise InvalidRequest("invalid recovery configuration: threshold must be greater than one for multiple shares")
    if shares > 255:
        raise InvalidRequest("invalid recovery configuration: shares must be less than 256")
    if threshold > shares:
        raise InvalidRequest("invalid recovery configuration: threshold cannot be larger than shares")
    return shares, threshold


def validate_seal_parameters(shares: object, threshold: object) -> tuple[int, int]:
    """Check ``secret_shares``/``secret_threshold`` (as sent, any JSON value) as Vault does."""
    shares, threshold = _integer("secret_shares", shares), _integer("secret_threshold", threshold)
    if shares < 1:
        raise InvalidRequest("invalid seal configuration: shares must be at least one")
    if threshold < 1:
        raise InvalidRequest("invalid seal configuration: threshold must be at least one")
    if shares > 1 and threshold == 1:
        raise InvalidRequest("invalid seal configuration: threshold must be greater than one for multiple shares")
    if shares > 255:
        raise InvalidRequest("invalid seal configuration: shares must be less than 256")
    if threshold > shares:
        raise InvalidRequest("invalid seal configuration: threshold cannot be larger than shares")
    return shares, threshold


def decode_share(key: str) -> bytes:
    """A share as the API accepts it: hex (Vault's ``keys``) or base64 (``keys_base64``)."""
    if not isinstance(key, str) or not key:
        raise InvalidRequest("'key' must be a valid hex or base64 string")
    try:
        return bytes.fromhex(key)
    except ValueError:
        pass
    try:
        return base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("'key' must be a valid hex or base64 string") from None


class SealManager:
    """The seal state machine over a storage backend (see module docstring).

    Thread-safe.  ``on_change`` is called (outside the lock) after every change of
    the keyring (unseal, seal, rotate) so the owner can propagate it to workers.
    """

    def __init__(
        self,
        backend: Backend,
        clock: Callable[[], datetime],
        randbytes: Callable[[int], bytes] = os.urandom,
        on_change: Callable[[Keyring | None], None] | None = None,
        cluster_name: str = "",
        storage_type: str = "consul",
        auto_seal: AutoSeal | None = None,
    ):
        """``auto_seal`` None: the Shamir seal; otherwise what protects the root key."""
        self._backend = backend
        self._auto_seal = auto_seal
        self._clock = clock
        self._randbytes = randbytes
        self._on_change = on_change
        self._lock = threading.RLock()
        self._keyring: Keyring | None = None
        self._progress: list[bytes] = []
        self._nonce = ""
        self._cluster_name = cluster_name  # "" : Vault's vault-cluster-<8 hex of the cluster id>
        self._storage_type = storage_type
        self._recovery: Recovery | None = None

    # --- reading state ---------------------------------------------------------

    def seal_config(self) -> dict | None:
        """The stored seal configuration, None when storage is not initialised."""
        raw = self._backend.get(SEAL_CONFIG_PATH)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise IntegrityError("seal configuration in storage is not valid JSON") from None

    def keyring(self) -> Keyring | None:
        return self._keyring

    @property
    def recovery_seal(self) -> bool:
        """True with an auto seal: the operators hold recovery keys, not unseal keys."""
        return self._auto_seal is not None

    def operator_threshold(self) -> int:
        """How many of the operators' shares an operation needs: the recovery
        threshold with an auto seal, the unseal threshold otherwise."""
        config = self.seal_config()
        if config is None:
            raise InvalidRequest("server is not yet initialized")
        return int(config["recovery_threshold" if self._auto_seal else "secret_threshold"])

    def recovery(self, operation: str, action: str, params: dict) -> dict | None:
        if self._recovery is None:
            from strongroom.core.recovery import Recovery  # it builds on this module

            self._recovery = Recovery(self, self._randbytes)
        return self._recovery.run(operation, action, params)

    # --- HAControl: a SealManager handed to a Core is a single-process node, without HA ---

    def ha(self) -> dict:
        return dict(HA_DISABLED)

    def step_down(self) -> None:
        """Without HA there is no lock to give up (Vault answers 204 too)."""

    def ha_status(self) -> dict:
        return {"nodes": []}

    def await_ha_change(self, seen: dict, timeout: float) -> dict:
        return dict(HA_DISABLED)

    def status(self) -> dict:
        config = self.seal_config()
        with self._lock:
            sealed = self._keyring is None
            shares, threshold = (
                ("recovery_shares", "recovery_threshold") if self._auto_seal else ("secret_shares", "secret_threshold")
            )
            body = {
                "type": self._auto_seal.type if self._auto_seal else "shamir",
                "initialized": config is not None,
                "sealed": sealed,
                "t": config.get(threshold, 0) if config else 0,
                "n": config.get(shares, 0) if config else 0,
                "progress": len(self._progress) if sealed else 0,
                "nonce": self._nonce if sealed and self._progress else "",
                "version": VERSION,
                "build_date": BUILD_DATE,
                "migration": False,
                "recovery_seal": self._auto_seal is not None,
                "storage_type": self._storage_type,
            }
            if config and not sealed:
                # The same name as the metrics' cluster label, on every node and across restarts.
                body["cluster_name"] = cluster_label(self._cluster_name, config.get("cluster_id", ""))
                body["cluster_id"] = config.get("cluster_id", "")
            return body

    # --- transitions -----------------------------------------------------------

    def initialize(
        self,
        shares: int,
        threshold: int,
        root_token_id: str = "",
        recovery_shares: int = 0,
        recovery_threshold: int = 0,
    ) -> dict:
        if self._auto_seal is not None:
            return self._initialize_auto(recovery_shares, recovery_threshold, root_token_id)
        if recovery_shares or recovery_threshold:
            raise InvalidRequest("parameters recovery_shares,recovery_threshold not applicable to seal type shamir")
        parts, keyring = self._create_keys(shares, threshold)
        # The root token is written through a private barrier holding the new
        # keyring, so the node never looks unsealed to concurrent requests.
        from strongroom.auth.token import TokenStore

        barrier = Barrier(self._backend)
        barrier.set_keyring(keyring)
        tokens = TokenStore(BarrierView(barrier, "sys/token/"), self._clock, randbytes=self._randbytes)
        root_token, _ = tokens.create_root(token_id=root_token_id or None)
        return {
            "keys": [p.hex() for p in parts],
            "keys_base64": [base64.b64encode(p).decode() for p in parts],
            "root_token": root_token,
        }

    def _initialize_auto(self, shares: int, threshold: int, root_token_id: str) -> dict:
        """``sys/init`` with an auto seal: the root key and the recovery key wrapped by
        the seal, the root token minted, then the node unsealed (Vault's
        ``UnsealWithStoredKeys`` right after ``Initialize``)."""
        auto_seal = self._auto_seal
        assert auto_seal is not None
        shares, threshold = validate_recovery_parameters(shares, threshold)
        from strongroom.auth.token import TokenStore

        with self._lock:
            if self.seal_config() is not None:
                raise AlreadyInitialized()
            keyring = Keyring.generate(self._clock, randbytes=self._randbytes)
            recovery_parts: list[bytes] = []
            writes = [
                (
                    KEYRING_PATH,
                    aead.encrypt(
                        keyring.root_key, 0, keyring.serialize(), KEYRING_PATH.encode(), randbytes=self._randbytes
                    ),
                ),
                (ROOT_KEY_PATH, auto_seal.wrap(keyring.root_key, ROOT_KEY_PATH)),
            ]
            if shares:
                recovery_key, recovery_parts = self.new_unseal_key(shares, threshold)
                writes.append((RECOVERY_KEY_PATH, auto_seal.wrap(recovery_key, RECOVERY_KEY_PATH)))
            config = {
                "type": auto_seal.type,
                "secret_shares": 1,
                "secret_threshold": 1,
                "stored_shares": 1,
                "recovery_shares": shares,
                "recovery_threshold": threshold,
                "cluster_id": str(uuid.UUID(bytes=self._randbytes(16))),
            }
            # Every key first, seal-config last (as for Shamir): a crash half-way leaves
            # storage uninitialised, and other nodes start unsealing only once it is complete.
            for path, value in writes:
                self._backend.put(path, value)
            barrier = Barrier(self._backend)
            barrier.set_keyring(keyring)
            tokens = TokenStore(BarrierView(barrier, "sys/token/"), self._clock, randbytes=self._randbytes)
            root_token, _ = tokens.create_root(token_id=root_token_id or None)
            self._backend.put(SEAL_CONFIG_PATH, json.dumps(config).encode())
            self._keyring = keyring
        if self._on_change:
            self._on_change(keyring)
        body: dict = {"keys": [], "keys_base64": [], "root_token": root_token}
        if recovery_parts:
            body["recovery_keys"] = [p.hex() for p in recovery_parts]
            body["recovery_keys_base64"] = [base64.b64encode(p).decode() for p in recovery_parts]
        return body

    def auto_unseal(self) -> bool:
        """Unseal with the auto seal (no operator): True once unsealed, False while
        storage is not initialised.  ``StorageUnavailable`` when the seal cannot be
        reached (the caller retries); a Shamir seal never unseals itself."""
        if self._auto_seal is None:
            raise InvalidRequest("the Shamir seal cannot unseal itself")
        if self._keyring is not None:
            return True
        config = self.seal_config()
        if config is None:
            return False
        keyring = self._keyring_from_seal()  # network I/O, outside the lock
        with self._lock:
            if self._keyring is not None:
                return True
            self._keyring, self._progress, self._nonce = keyring, [], ""
        if self._on_change:
            self._on_change(keyring)
        return True

    def _keyring_from_seal(self) -> Keyring:
        auto_seal = self._auto_seal
        assert auto_seal is not None
        sealed_root, sealed_keyring = self._backend.get(ROOT_KEY_PATH), self._backend.get(KEYRING_PATH)
        if sealed_root is None or sealed_keyring is None:
            raise IntegrityError("root key or keyring missing from storage")
        root_key = auto_seal.unwrap(sealed_root, ROOT_KEY_PATH)
        return Keyring.deserialize(aead.decrypt(root_key, sealed_keyring, KEYRING_PATH.encode()))

    def _verify_recovery_key(self, shares: list[bytes], config: dict, failure: str) -> bytes:
        """The recovery key ``shares`` combine to, checked against the stored, seal-wrapped
        one; ``InvalidRequest`` starting with ``failure`` when it is not that key."""
        auto_seal = self._auto_seal
        if auto_seal is None:
            raise InvalidRequest("recovery keys are not supported with the Shamir seal")
        stored = self._backend.get(RECOVERY_KEY_PATH)
        if stored is None or not config.get("recovery_shares"):
            raise InvalidRequest(f"{failure}: no recovery key was set at initialisation")
        try:
            candidate = shares[0] if config["recovery_shares"] == 1 else shamir.combine(shares)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{failure}: failed to compute combined key: {exc}") from None
        if not hmac.compare_digest(candidate, auto_seal.unwrap(stored, RECOVERY_KEY_PATH)):
            raise InvalidRequest(f"{failure}: recovery key verification failed")
        return candidate

    def _create_keys(self, shares: int, threshold: int) -> tuple[list[bytes], Keyring]:
        shares, threshold = validate_seal_parameters(shares, threshold)
        with self._lock:
            if self.seal_config() is not None:
                raise AlreadyInitialized()
            keyring = Keyring.generate(self._clock, randbytes=self._randbytes)
            unseal_key = self._randbytes(32)
            if shares == 1:
                parts = [unseal_key]
            else:
                parts = shamir.split(unseal_key, shares, threshold, randbytes=self._randbytes)
            config = {
                "type": "shamir",
                "secret_shares": shares,
                "secret_threshold": threshold,
                "cluster_id": str(uuid.UUID(bytes=self._randbytes(16))),
            }
            # Keyring first, seal-config last: a crash half-way leaves storage
            # uninitialised (re-initialisable) rather than initialised without keys.
            self._backend.put(
                KEYRING_PATH,
                aead.encrypt(
                    keyring.root_key, 0, keyring.serialize(), KEYRING_PATH.encode(), randbytes=self._randbytes
                ),
            )
            self._backend.put(
                ROOT_KEY_PATH,
                aead.encrypt(unseal_key, 0, keyring.root_key, ROOT_KEY_PATH.encode(), randbytes=self._randbytes),
            )
            self._backend.put(SEAL_CONFIG_PATH, json.dumps(config).encode())
            return parts, keyring

    def unseal(self, key: str | None, reset: bool = False) -> dict:
        if reset:
            with self._lock:
                if self._keyring is not None:
                    raise InvalidRequest("vault is unsealed")
                self._progress = []
                self._nonce = ""
            return self.status()
        if key is None or key == "":
            raise InvalidRequest("'key' must be specified in request body as JSON, or 'reset' set to true")
        share = decode_share(key)
        config = self.seal_config()
        if config is None:
            raise NotInitialized()
        if self._auto_seal is not None and not config.get("recovery_shares"):
            raise InvalidRequest(
                f"seal type {self._auto_seal.type} unseals itself and this cluster has no recovery keys"
            )
        changed = False
        with self._lock:
            if self._keyring is not None:
                return self.status()
            if any(existing == share for existing in self._progress):
                # Vault ignores a share submitted twice: no progress, no error.
                return self.status()
            if not self._progress:
                self._nonce = str(uuid.UUID(bytes=self._randbytes(16)))
            self._progress.append(share)
            threshold = config["recovery_threshold" if self._auto_seal else "secret_threshold"]
            if len(self._progress) < threshold:
                return self.status()
            shares, self._progress, self._nonce = self._progress, [], ""
            if self._auto_seal is not None:
                # OpenBao: with an auto seal, sys/unseal takes a threshold of recovery key
                # shares, checks them against the stored recovery key and then unseals with
                # the seal (after a manual sys/seal); they cannot open anything themselves.
                self._verify_recovery_key(shares, config, "Error unsealing")
                self._keyring = self._keyring_from_seal()
            else:
                self._keyring = self._recover_keyring(shares, config)
            changed = True
        if changed and self._on_change:
            self._on_change(self._keyring)
        return self.status()

    def _recover_keyring(self, shares: list[bytes], config: dict) -> Keyring:
        root_key = self._root_key_from(shares, config, "Error unsealing")
        sealed_keyring = self._backend.get(KEYRING_PATH)
        if sealed_keyring is None:
            raise IntegrityError("root key or keyring missing from storage")
        return Keyring.deserialize(aead.decrypt(root_key, sealed_keyring, KEYRING_PATH.encode()))

    def _root_key_from(self, shares: list[bytes], config: dict, failure: str) -> bytes:
        """The root key the ``shares`` of the unseal key decrypt; ``InvalidRequest``
        starting with ``failure`` when they do not (too few, wrong, or foreign)."""
        unseal_key = shares[0] if config["secret_shares"] == 1 else shamir.combine(shares)
        if len(unseal_key) != 32:
            raise InvalidRequest(f"{failure}: invalid key length")
        sealed_root = self._backend.get(ROOT_KEY_PATH)
        if sealed_root is None:
            raise IntegrityError("root key or keyring missing from storage")
        try:
            return aead.decrypt(unseal_key, sealed_root, ROOT_KEY_PATH.encode())
        except IntegrityError:
            raise InvalidRequest(
                f"{failure}: failed to decrypt keys from storage: cipher: message authentication failed"
            ) from None

    # --- operator recovery (core/recovery.py drives these) ----------------------

    def prove_shares(self, shares: list[bytes], failure: str) -> bytes:
        """Check that ``shares`` (a threshold of them) combine to the current unseal
        key; returns the root key.  The node must be unsealed.  With an auto seal
        there is no unseal key: ``InvalidRequest`` (rekey the recovery key instead)."""
        config = self.seal_config()
        if config is None:
            raise NotInitialized()
        if self._keyring is None:
            raise Sealed()
        if self._auto_seal is not None:
            raise InvalidRequest(
                f"seal type {self._auto_seal.type} has no unseal keys: rekey the recovery keys "
                "(sys/rekey-recovery-key, operator rekey -target=recovery)"
            )
        return self._root_key_from(shares, config, failure)

    def prove_recovery_shares(self, shares: list[bytes], failure: str) -> bytes:
        """Check that ``shares`` combine to the stored recovery key (auto seal only);
        returns it.  The node must be unsealed."""
        config = self.seal_config()
        if config is None:
            raise NotInitialized()
        if self._keyring is None:
            raise Sealed()
        return self._verify_recovery_key(shares, config, failure)

    def prove_operator_shares(self, shares: list[bytes], failure: str) -> None:
        """What ``sys/generate-root`` asks: the unseal key's shares with the Shamir
        seal, the recovery key's with an auto seal."""
        if self._auto_seal is not None:
            self.prove_recovery_shares(shares, failure)
        else:
            self.prove_shares(shares, failure)

    def new_unseal_key(self, shares: int, threshold: int) -> tuple[bytes, list[bytes]]:
        """A fresh unseal key and its ``shares`` Shamir shares (the key itself when one)."""
        key = self._randbytes(32)
        if shares == 1:
            return key, [key]
        return key, shamir.split(key, shares, threshold, randbytes=self._randbytes)

    def replace_unseal_key(self, root_key: bytes, unseal_key: bytes, shares: int, threshold: int) -> None:
        """Re-encrypt the root key under ``unseal_key`` and record the new share
        count and threshold, in one transaction: a node that reads storage sees
        the old key with the old configuration or the new with the new."""
        with self._lock:
            if self._keyring is None:
                raise Sealed()
            config = self.seal_config()
            if config is None:
                raise NotInitialized()
            config = {**config, "secret_shares": shares, "secret_threshold": threshold}
            sealed_root = aead.encrypt(unseal_key, 0, root_key, ROOT_KEY_PATH.encode(), randbytes=self._randbytes)
            self._backend.txn(
                [
                    TxnOp("set", ROOT_KEY_PATH, sealed_root),
                    TxnOp("set", SEAL_CONFIG_PATH, json.dumps(config).encode()),
                ]
            )

    def replace_recovery_key(self, recovery_key: bytes, shares: int, threshold: int) -> None:
        """Store a new seal-wrapped recovery key and its share count and threshold in
        one transaction (``sys/rekey-recovery-key``), like ``replace_unseal_key``."""
        auto_seal = self._auto_seal
        if auto_seal is None:
            raise InvalidRequest("recovery rekeying not supported")
        wrapped = auto_seal.wrap(recovery_key, RECOVERY_KEY_PATH)  # network I/O, outside the lock
        with self._lock:
            if self._keyring is None:
                raise Sealed()
            config = self.seal_config()
            if config is None:
                raise NotInitialized()
            config = {**config, "recovery_shares": shares, "recovery_threshold": threshold}
            self._backend.txn(
                [
                    TxnOp("set", RECOVERY_KEY_PATH, wrapped),
                    TxnOp("set", SEAL_CONFIG_PATH, json.dumps(config).encode()),
                ]
            )

    def barrier(self) -> Barrier | None:
        """A barrier over this seal's storage holding the current keyring (None while
        sealed): how the node core itself reads and writes encrypted values."""
        keyring = self._keyring
        if keyring is None:
            return None
        barrier = Barrier(self._backend)
        barrier.set_keyring(keyring)
        return barrier

    def mint_root_token(self) -> str:
        """A new root token (``sys/generate-root``), written through the barrier."""
        from strongroom.auth.token import TokenStore

        barrier = self.barrier()
        if barrier is None:
            raise Sealed()
        tokens = TokenStore(BarrierView(barrier, "sys/token/"), self._clock, randbytes=self._randbytes)
        token, _ = tokens.create_root()
        return token

    def seal(self) -> None:
        with self._lock:
            was_unsealed = self._keyring is not None
            self._keyring = None
            self._progress = []
            self._nonce = ""
        if was_unsealed and self._on_change:
            self._on_change(None)

    def rotate(self) -> Keyring:
        with self._lock:
            if self._keyring is None:
                raise Sealed()
            keyring = self._keyring.rotate(self._clock)
            self._backend.put(
                KEYRING_PATH,
                aead.encrypt(
                    keyring.root_key, 0, keyring.serialize(), KEYRING_PATH.encode(), randbytes=self._randbytes
                ),
            )
            self._keyring = keyring
        if self._on_change:
            self._on_change(keyring)
        return keyring

    def reload_keyring(self) -> Keyring | None:
        """Re-read the keyring from storage after another node rotated it."""
        with self._lock:
            if self._keyring is None:
                return None
            sealed_keyring = self._backend.get(KEYRING_PATH)
            if sealed_keyring is None:
                return self._keyring
            keyring = Keyring.deserialize(aead.decrypt(self._keyring.root_key, sealed_keyring, KEYRING_PATH.encode()))
            if keyring.active_term == self._keyring.active_term:
                return self._keyring
            self._keyring = keyring
        if self._on_change:
            self._on_change(keyring)
        return keyring
