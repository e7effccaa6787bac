"""Consul KV storage: the production ``Backend``.

Every write is one transaction on Consul's transaction endpoint (``/v1/txn``),
so it is atomic, its index is known, and it can be *fenced*: while this node holds
the HA lock, the first operation of every transaction is ``check-session`` on
the lock key, and Consul rejects the whole transaction once the session no
longer holds it.  A deposed active node therefore never writes, whatever its
own idea of its state.

Consul's limits (64 operations, 512 KiB per value and per transaction body)
are checked before sending, and a rolled-back transaction (HTTP 409) is read
back into ``LockLost`` (the fence failed) or ``WriteConflict`` (a
``check-index`` / ``check-not-exists`` failed): that translation between
``TxnOp`` and Consul's transaction JSON lives in ``storage/consul_txn.py``.

Errors become ``StorageUnavailable``, ``RequestTooLarge``, ``InvalidRequest``
(``storage/consul_errors.py``; the HTTP transport is ``storage/consul_transport.py``; the limits, in
``storage/consul_txn.py``), ``LockLost`` or ``WriteConflict`` (also
``storage/consul_txn.py``).  Messages carry status codes and Consul's own error
text, never values; values are never logged.

Concurrent writes of one process share Consul transactions (group commit,
``storage/consul_batch.py``); each still succeeds, conflicts or fails exactly
as it would alone.

Session and lock helpers for the HA layer live in ``storage/consul_session.py``;
they use the py-consul client ``client`` builds on first use
(storage/consul_client.py), so a process that only reads and writes KV (a
gunicorn worker) never loads py-consul or requests.

See https://developer.hashicorp.com/consul/api-docs/txn and
https://developer.hashicorp.com/vault/docs/configuration/storage/consul.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from strongroom.errors import LockLost, StorageUnavailable
from strongroom.storage import WRITE_VERBS, TxnOp, changes, children
from strongroom.storage.consul_address import TLS_VERSIONS, ConsulEndpoint, consul_key, parse_address
from strongroom.storage.consul_batch import CommitTurns, TxnBatcher
from strongroom.storage.consul_errors import consul_errors, error_for_status
from strongroom.storage.consul_transport import Transport
from strongroom.storage.consul_txn import TXN_MAX_OPS, check_ops, commit_index, encode_txn, rolled_back_error

if TYPE_CHECKING:
    import consul

log = logging.getLogger(__name__)

_CONSISTENCY = {"default": "default", "strong": "consistent"}

#: A fence names the lock key (backend-relative) and the session holding it, or
#: None when this node does not hold the lock and writes go out unfenced.
Fence = Callable[[], "tuple[str, str] | None"]


class ConsulBackend:
    """``storage.Backend`` over Consul KV (see the module docstring).

    Invariants:

    * keys are stored under ``prefix`` (normalised to end with ``/`` unless empty);
    * every write applies entirely or not at all (it may share its Consul
      transaction with concurrent writes of this process: group commit);
    * when ``fence()`` returns ``(lock_key, session_id)`` the transaction starts
      with ``check-session`` on ``prefix + lock_key``; if that check fails the
      write raises ``LockLost`` after calling ``on_lock_lost()`` once, and
      nothing was written.  When ``fence`` is None or returns None, writes are
      unfenced (single node, or a node that does not lead);
    * a failed ``check-index`` / ``check-not-exists`` raises ``WriteConflict``
      (never ``LockLost``, and without calling ``on_lock_lost``) and nothing
      was written;
    * writes return an index at or after their commit; ``index()`` is the highest
      index seen by any write, read or ``observe_index`` and never decreases;
    * at most ``max_parallel`` requests are in flight at once;
    * safe to share between threads.

    ``client`` is a ``ConsulEndpoint`` (what ``from_config`` gives), or a
    py-consul client, used as given (its token, TLS and timeouts) for the
    sessions and read for the endpoint of the KV path.
    """

    def __init__(
        self,
        client: ConsulEndpoint | consul.Consul,
        prefix: str = "strongroom/",
        consistency_mode: str = "default",
        max_parallel: int = 128,
        fence: Fence | None = None,
        on_lock_lost: Callable[[], None] | None = None,
        max_value_size: int = 512 * 1024,
        max_txn_bytes: int = 512 * 1024,
        commit_turns: CommitTurns | None = None,
    ):
        if consistency_mode not in _CONSISTENCY:
            raise ValueError(f"consistency_mode must be 'default' or 'strong', not {consistency_mode!r}")
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        prefix = prefix.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        if isinstance(client, ConsulEndpoint):
            self._endpoint, self._client = client, None
        else:
            from strongroom.storage.consul_client import endpoint_of

            self._endpoint, self._client = endpoint_of(client), client
        self._client_connections = max_parallel + 16
        self._client_lock = threading.Lock()
        self._prefix = prefix
        self._consistency = _CONSISTENCY[consistency_mode]
        self._slots = threading.BoundedSemaphore(max_parallel)
        self._fence = fence
        self._on_lock_lost = on_lock_lost
        self._max_value_size = max_value_size
        self._max_txn_bytes = max_txn_bytes
        self._index = 0
        self._index_lock = threading.Lock()
        self._address = self._endpoint.base_uri
        self._http = Transport(self._endpoint)
        # Concurrent writes of this process share Consul transactions, and with
        # ``commit_turns`` the node's processes take turns (storage/consul_batch.py).
        self._batcher = TxnBatcher(
            self._send_txn,
            TXN_MAX_OPS,
            max_txn_bytes,
            record_prefix=self._full_key(changes.PREFIX),
            turns=commit_turns,
        )

    @classmethod
    def from_config(
        cls,
        address: str = "127.0.0.1:8500",
        token: str = "",
        *,
        scheme: str | None = None,
        tls_ca_file: str | None = None,
        tls_cert_file: str | None = None,
        tls_key_file: str | None = None,
        tls_skip_verify: bool = False,
        tls_min_version: str = "tls12",
        timeout: float = 10.0,
        datacenter: str | None = None,
        prefix: str = "strongroom/",
        consistency_mode: str = "default",
        max_parallel: int = 128,
        fence: Fence | None = None,
        on_lock_lost: Callable[[], None] | None = None,
        max_value_size: int = 512 * 1024,
        max_txn_bytes: int = 512 * 1024,
        commit_turns: CommitTurns | None = None,
    ) -> ConsulBackend:
        """The backend of Vault-style storage settings.

        ``address`` is ``host:port`` or ``scheme://host:port``.  An explicit
        ``token`` wins over ``CONSUL_HTTP_TOKEN`` (for py-consul, which lets the
        environment win otherwise).  ``tls_min_version`` (``tls10`` .. ``tls13``) is the
        lowest TLS version any connection to Consul may negotiate.  ``timeout``
        bounds connecting and each read, in seconds; blocking queries add their
        wait to it.  Raises ``ValueError`` on a bad address, scheme or TLS version.
        """
        final_scheme, host, port = parse_address(address, scheme)
        if tls_min_version not in TLS_VERSIONS:
            raise ValueError(f"tls_min_version must be one of {', '.join(TLS_VERSIONS)}, not {tls_min_version!r}")
        verify: bool | str = False if tls_skip_verify else (tls_ca_file or True)
        cert = (tls_cert_file, tls_key_file) if tls_cert_file and tls_key_file else tls_cert_file
        endpoint = ConsulEndpoint(
            scheme=final_scheme,
            host=host,
            port=port,
            token=token or None,
            datacenter=datacenter,
            verify=verify,
            cert=cert,
            timeout=timeout,
            tls_min_version=TLS_VERSIONS[tls_min_version],
        )
        return cls(
            endpoint,
            prefix=prefix,
            consistency_mode=consistency_mode,
            max_parallel=max_parallel,
            fence=fence,
            on_lock_lost=on_lock_lost,
            max_value_size=max_value_size,
            max_txn_bytes=max_txn_bytes,
            commit_turns=commit_turns,
        )

    @property
    def endpoint(self) -> ConsulEndpoint:
        """The Consul agent this backend talks to, with its token and TLS settings."""
        return self._endpoint

    @property
    def client(self) -> consul.Consul:
        """The py-consul client (for the session, registry and watch helpers
        only), built at first use; blocking queries of the HA layer share it
        but not the slots, so its pool keeps ``max_parallel + 16`` connections."""
        with self._client_lock:
            if self._client is None:
                from strongroom.storage.consul_client import client_for

                self._client = client_for(self._endpoint, self._client_connections)
            return self._client

    @property
    def prefix(self) -> str:
        """The Consul key prefix every backend key is stored under."""
        return self._prefix

    def close(self) -> None:
        """Close pooled HTTP connections; the backend must not be used afterwards."""
        self._http.close()
        session = getattr(self._client.http, "session", None) if self._client is not None else None
        if session is not None:
            session.close()

    # -- index -------------------------------------------------------------

    def index(self) -> int:
        """The highest Consul index this backend has seen."""
        with self._index_lock:
            return self._index

    def observe_index(self, index: int) -> None:
        """Record an index seen elsewhere (e.g. a blocking query); never lowers ``index()``."""
        with self._index_lock:
            if index > self._index:
                self._index = index

    # -- reads -------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The value at ``key`` or None, read with the configured consistency mode."""
        return self.get_with_index(key)[0]

    def get_with_index(self, key: str) -> tuple[bytes | None, int]:
        """The value at ``key`` and its ``ModifyIndex``; ``(None, 0)`` when absent.

        The pair comes from one KV read, so the index is that of the value
        returned: checking it in a later transaction detects any write since."""
        status, body, _ = self._kv_get(self._full_key(key), [], "a read")
        if status == 404:
            return None, 0
        try:
            entry = json.loads(body)[0]
            value = base64.b64decode(entry["Value"]) if entry.get("Value") else b""
            return value, int(entry["ModifyIndex"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise StorageUnavailable(f"consul at {self._address} returned an unreadable KV entry") from None

    def get_prefix(self, prefix: str) -> dict[str, tuple[bytes, int]]:
        """Every key starting with ``prefix`` with its value and ``ModifyIndex``,
        from one recursive KV read (``GET /v1/kv/<prefix>?recurse``).

        Consul answers it from one snapshot of its state store, so keys written
        by one transaction are seen together.  Keys are backend keys (without
        this backend's own ``prefix``); empty when nothing matches.

        Consul filters a recursive read by ACL instead of refusing it.  Consul
        1.13 and later say so in ``X-Consul-Results-Filtered-By-ACLs``, which is
        raised here as a denial; Consul 1.8 does not, so there the token must be
        allowed to read the whole storage prefix, as it must anyway (the keyring
        and token lookups are single-key reads, which Consul refuses outright)."""
        full = self._full_key(prefix)
        status, body, filtered = self._kv_get(full, [("recurse", "")], "a prefix read")
        if filtered:
            # A recursive read the token may not fully see would silently
            # miss keys; a single-key read would have been refused.
            raise error_for_status(403, "", "a prefix read")
        if status == 404:
            return {}
        strip = len(self._prefix)
        found: dict[str, tuple[bytes, int]] = {}
        try:
            entries = json.loads(body)
            if not isinstance(entries, list):
                raise ValueError("not a list of entries")
            for entry in entries:
                key = entry["Key"]
                if not key.startswith(full):
                    raise ValueError("key outside the prefix")
                value = base64.b64decode(entry["Value"]) if entry.get("Value") else b""
                found[key[strip:]] = (value, int(entry["ModifyIndex"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StorageUnavailable(f"consul at {self._address} returned an unreadable KV listing") from None
        return found

    def list(self, prefix: str) -> list[str]:
        """Immediate children of ``prefix``, Vault-style: sorted, folders end with ``/``."""
        full = self._full_key(prefix)
        status, body, _ = self._kv_get(full, [("keys", ""), ("separator", "/")], "a list")
        if status == 404:
            return []
        try:
            keys = json.loads(body)
            if not isinstance(keys, list) or not all(isinstance(k, str) and k.startswith(full) for k in keys):
                raise ValueError("not a list of keys under the prefix")
        except ValueError:
            raise StorageUnavailable(f"consul at {self._address} returned an unreadable KV listing") from None
        strip = len(self._prefix)
        return children((k[strip:] for k in keys), prefix)

    def _kv_get(self, full_key: str, params: Sequence[tuple[str, str]], what: str) -> tuple[int, bytes, bool]:
        """One ``GET /v1/kv/<full_key>`` with ``params`` and the configured
        consistency: (200 or 404, body, whether Consul's ACLs filtered it);
        any other answer is raised as ``what``'s error.  The index it carries
        is observed."""
        query = [*params, ("consistent", "")] if self._consistency == "consistent" else list(params)
        with self._slots, consul_errors(self._address, what):
            status, index, body, filtered = self._http.request("GET", "/v1/kv/" + urllib.parse.quote(full_key), query)
        self.observe_index(index)
        if status not in (200, 404):
            raise error_for_status(status, body.decode(errors="replace"), what)
        return status, body, filtered

    # -- writes ------------------------------------------------------------

    def put(self, key: str, value: bytes) -> int:
        """Store ``value`` at ``key`` in one (fenced) transaction; returns its index."""
        return self.txn([TxnOp("set", key, value)])

    def delete(self, key: str) -> int:
        """Remove ``key`` (no error if absent) in one (fenced) transaction."""
        return self.txn([TxnOp("delete", key)])

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key under ``prefix`` with Consul's ``delete-tree`` verb."""
        return self.txn([TxnOp("delete-tree", prefix)])

    def txn(self, ops: Sequence[TxnOp]) -> int:
        """Apply ``ops`` atomically as one Consul transaction; returns its index.

        Raises ``InvalidRequest`` (unknown verb, more than 64 operations counting
        the fence), ``RequestTooLarge`` (a value over ``max_value_size`` or a body
        over ``max_txn_bytes``), both before anything is sent; ``LockLost`` when
        the fence fails; ``WriteConflict`` when one of the checks fails (and the
        fence did not); ``StorageUnavailable`` when Consul cannot be reached or
        fails, in which case the outcome is unknown.  An empty ``ops``, or one of
        checks only, writes nothing and returns ``index()``.
        """
        ops = list(ops)
        check_ops(ops, self._max_value_size)
        if not ops:
            return self.index()
        fence = self._fence() if self._fence is not None else None
        fence_op, kv_ops, body, sources = encode_txn(ops, fence, self._full_key, self._max_txn_bytes)
        answer = self._batcher.commit(fence_op, kv_ops, body)
        if answer.status == 409:
            error = rolled_back_error(answer.text, bool(fence), ops, sources)
            if isinstance(error, LockLost) and fence is not None:
                self._lost_lock(fence)
            raise error
        if answer.status != 200:
            raise error_for_status(answer.status, answer.text, "a transaction")
        index = commit_index(answer.document, self._address, ops)
        writes = [op for op in ops if op.verb in WRITE_VERBS]
        if not writes:
            return self.index()
        if not index:
            index = self._index_after_delete(self._full_key(writes[0].key))
        self.observe_index(index)
        return index

    # -- internals ---------------------------------------------------------

    def _send_txn(self, body: bytes) -> tuple[int, str]:
        """One ``PUT /v1/txn`` (the batcher's way out)."""
        with self._slots, consul_errors(self._address, "a transaction"):
            status, _, answer, _ = self._http.request("PUT", "/v1/txn", [], body)
        return status, answer.decode(errors="replace")

    def _full_key(self, key: str) -> str:
        return consul_key(self._prefix, key)

    def _lost_lock(self, fence: tuple[str, str]) -> None:
        """The fence failed: Consul no longer sees this node's session on the lock."""
        log.warning("fenced write rejected: session %s no longer holds %s", fence[1], fence[0])
        if self._on_lock_lost is not None:
            try:
                self._on_lock_lost()
            except Exception:
                log.exception("on_lock_lost callback failed")

    def _index_after_delete(self, full_key: str) -> int:
        """An index at or after a delete-only commit.

        Delete results carry no index, and the check-session result carries the
        lock's.  Consul answers a read of a missing key (or of a prefix) with
        the KV table's index, which includes the tombstone just written; a
        default-consistency read is served by the leader, which has applied the
        commit before answering the transaction.
        """
        path = "/v1/kv/" + urllib.parse.quote(full_key)
        params = [] if full_key else [("keys", ""), ("separator", "/")]
        with self._slots, consul_errors(self._address, "an index read"):
            status, index, body, _ = self._http.request("GET", path, params)
        if status not in (200, 404):
            raise error_for_status(status, body.decode(errors="replace"), "an index read")
        return index


class OnConsul(Protocol):
    """What the session and registry helpers need of a backend on Consul: a
    ``ConsulBackend``, or a wrapper around one (``InstrumentedBackend``,
    ``CachedBackend``) that passes these through to it."""

    @property
    def client(self) -> consul.Consul:
        """The py-consul client."""

    @property
    def prefix(self) -> str:
        """The Consul key prefix every backend key is stored under."""

    def observe_index(self, index: int) -> None:
        """Record an index seen elsewhere; never lowers the backend's index."""
