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

VERSION = "1.17.0+strongroom"
BUILD_DATE = "2026-11-25T00:00:00Z"


class SealControl(Protocol):
    """What the core needs of the seal, wherever the keys actually live."""

    def status(self) -> dict:
        """Vault's ``sys/seal-status`` body."""

    def initialize(self, shares: int, threshold: int, root_token_id: str = "") -> dict:
        """Initialise storage and mint the root token; returns Vault's ``sys/init``
        body (``keys``, ``keys_base64``, ``root_token``).  The node stays sealed."""

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


class NodeControl(SealControl, HAControl, Protocol):
    """What a ``Core`` is handed: the node's seal and its HA state
    (``SealManager`` for a single-process node, ``server.nodelink.NodeLink`` in a worker)."""


#: What a node without HA reports: it is its own active node.
HA_DISABLED = {"enabled": False, "role": "active"}


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer")
    return value


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
    ):
        self._backend = backend
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

    def status(self) -> dict:
        config = self.seal_config()
        with self._lock:
            sealed = self._keyring is None
            body = {
                "type": "shamir",
                "initialized": config is not None,
                "sealed": sealed,
                "t": config["secret_threshold"] if config else 0,
                "n": config["secret_shares"] if config else 0,
                "progress": len(self._progress) if sealed else 0,
                "nonce": self._nonce if sealed and self._progress else "",
                "version": VERSION,
                "build_date": BUILD_DATE,
                "migration": False,
                "recovery_seal": False,
                "storage_type": self._storage_type,
            }
            if config and not sealed:
                # The same name as the metrics' cluster label, on every node and across restarts.
                body["cluster_name"] = cluster_label(self._cluster_name, config.get("cluster_id", ""))
                body["cluster_id"] = config.get("cluster_id", "")
            return body

    # --- transitions -----------------------------------------------------------

    def initialize(self, shares: int, threshold: int, root_token_id: str = "") -> dict:
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
            if len(self._progress) < config["secret_threshold"]:
                return self.status()
            shares, self._progress, self._nonce = self._progress, [], ""
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
        key; returns the root key.  The node must be unsealed."""
        config = self.seal_config()
        if config is None:
            raise NotInitialized()
        if self._keyring is None:
            raise Sealed()
        return self._root_key_from(shares, config, failure)

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
