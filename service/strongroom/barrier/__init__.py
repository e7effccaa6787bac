"""The barrier: everything Strongroom stores is encrypted here, and only here.

Invariants (see Vault's ``vault/barrier_aes_gcm.go`` for the model):

* **Format.**  Every value below the barrier is
  ``term (4 bytes, big-endian) | version 0x02 | nonce (12) | AES-256-GCM ciphertext+tag``
  (``aead``).  Only ``core/seal-config`` is stored in plaintext, and it is written
  by the seal, not through the barrier.
* **Associated data.**  The storage path (the backend key, utf-8) is the GCM
  associated data, so a value moved or copied to another path, or altered in
  any byte, fails with ``IntegrityError`` instead of being returned.
* **Terms.**  The keyring maps terms (1, 2, ...) to 32-byte keys; writes use the
  active term, reads use the term in the value's header, and an unknown term is
  an ``IntegrityError``.  Rotation adds a term and keeps the old ones, so
  existing values stay readable without re-encryption.  Term 0 is reserved for
  the seal's own blobs (root key under the unseal key, keyring under the root
  key), which the barrier can therefore never be tricked into opening.
* **Sealed.**  Without a keyring every barrier operation raises ``Sealed``.
* **Views.**  Engines and stores get a ``BarrierView`` confined to their
  prefix, never the barrier or the storage backend.
* **Shamir.**  Unseal key shares use HashiCorp Vault's exact share format
  (``shamir``), so they interoperate with Vault's ``shamir`` package.
"""

from strongroom.barrier.barrier import Barrier, BarrierView
from strongroom.barrier.keyring import Key, Keyring

__all__ = ["Barrier", "BarrierView", "Key", "Keyring"]
