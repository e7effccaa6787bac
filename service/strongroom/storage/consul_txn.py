"""Consul's transaction JSON: ``TxnOp`` lists in, ``/v1/txn`` answers out.

Pure translation for ``ConsulBackend.txn`` (``storage/consul.py``): no I/O and
no state, so the backend keeps the sending, the fence, the index and the
lock-lost callback.

Consul limits checked here, before anything is sent (Consul 1.8 defaults):

* a transaction holds at most 64 operations; more are refused with
  ``InvalidRequest`` rather than split, since splitting would break atomicity;
* a KV value holds at most ``kv_max_value_size`` (512 KiB) and, separately, the
  whole JSON body of a transaction at most ``txn_max_req_len`` (512 KiB).
  Values travel base64-encoded, so through ``/v1/txn`` a single value tops out
  near 384 KiB.  Both limits raise ``RequestTooLarge`` because Consul answers
  413 before reading the body and may reset the connection while a large body
  is still being sent.

Optimistic concurrency uses Consul's own transaction verbs: ``check-index``
(the key's ``ModifyIndex``) and ``check-not-exists``.  A check whose key is
next touched by a ``set`` (every read-modify-write: check what was read, then
write it back) travels as one ``cas`` operation with the checked index (0:
only if absent), which Consul applies as the check and the set together: one
operation fewer, and Consul's CPU grows with every operation of a
transaction (bench/README.md has the figure).  A rolled-back
transaction (HTTP 409) names its failing operations by position; a failure of
the fence's ``check-session`` (position 0) is ``LockLost``, a failure of one of
the caller's checks (a ``cas`` included) is ``WriteConflict``.

A fenced transaction (the active node's) that writes anything also sets its
change record (storage/changes.py), last, so performance standbys learn of it
from the same commit.

See https://developer.hashicorp.com/consul/api-docs/txn.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

from strongroom import jsoncodec, metrics
from strongroom.errors import InvalidRequest, LockLost, RequestTooLarge, StorageUnavailable
from strongroom.storage import CHECK_VERBS, VERBS, TxnOp, WriteConflict, value_too_large
from strongroom.storage.changes import record_op
from strongroom.storage.consul_errors import error_for_status, redact_keys

#: Consul refuses transactions with more operations than this (``maxTxnOps``).
TXN_MAX_OPS = 64


def check_ops(ops: Sequence[TxnOp], max_value_size: int) -> None:
    """Refuse an unknown verb or a bad ``check-index`` (``InvalidRequest``) and a
    value over ``max_value_size`` bytes (``RequestTooLarge``), op by op in order."""
    for op in ops:
        if op.verb not in VERBS:
            raise InvalidRequest(f"unknown transaction verb {op.verb!r}")
        if op.verb == "check-index" and (not isinstance(op.index, int) or op.index < 0):
            raise InvalidRequest("check-index needs a non-negative index")
        if op.verb == "set" and len(op.value or b"") > max_value_size:
            raise value_too_large(len(op.value or b""), max_value_size)


def encode_txn(
    ops: Sequence[TxnOp],
    fence: tuple[str, str] | None,
    full_key: Callable[[str], str],
    max_txn_bytes: int,
) -> tuple[dict | None, list[dict], bytes, list[int]]:
    """The ``check-session`` operation (None unfenced), the KV operations, the
    whole ``/v1/txn`` body for ``ops`` behind ``fence`` (``(lock_key, session_id)``)
    and, for each KV operation, the position in ``ops`` it answers for (for a
    ``cas``, its check's).

    ``full_key`` maps a backend key to its Consul key.  Raises ``InvalidRequest``
    over ``TXN_MAX_OPS`` operations (counting the fence and the change record)
    and ``RequestTooLarge`` for a body over ``max_txn_bytes``.

    Behind a fence the KV operations end with the change record, which
    answers for no position of ``ops``."""
    record = record_op(ops) if fence else None
    count = len(ops) + (1 if fence else 0) + (1 if record else 0)
    if count > TXN_MAX_OPS:
        raise InvalidRequest(f"transaction has {count} operations; Consul allows at most {TXN_MAX_OPS}")
    fence_op = None
    if fence:
        lock_key, session_id = fence
        fence_op = {"KV": {"Verb": "check-session", "Key": full_key(lock_key), "Session": session_id}}
    absorbed = _checks_absorbed(ops)  # position of a set -> position of the check it carries
    skipped = set(absorbed.values())
    kv_ops: list[dict] = []
    sources: list[int] = []
    for position, op in enumerate(ops):
        if position in skipped:
            continue
        if position in absorbed:
            check = ops[absorbed[position]]
            index = check.index if check.verb == "check-index" and check.index else 0
            kv_ops.append(
                {
                    "KV": {
                        "Verb": "cas",
                        "Key": full_key(op.key),
                        "Index": index,
                        "Value": base64.b64encode(bytes(op.value or b"")).decode("ascii"),
                    }
                }
            )
            sources.append(absorbed[position])
        else:
            kv_ops.append({"KV": _kv_op(op, full_key(op.key))})
            sources.append(position)
    if record is not None:
        kv_ops.append({"KV": _kv_op(record, full_key(record.key))})
    body = jsoncodec.dumps(([fence_op] if fence_op else []) + kv_ops)
    if len(body) > max_txn_bytes:
        raise RequestTooLarge(
            f"the write needs a storage transaction of {len(body)} bytes (values base64-encoded); "
            f"Consul accepts at most {max_txn_bytes} bytes: store a smaller value"
        )
    return fence_op, kv_ops, body, sources


def _checks_absorbed(ops: Sequence[TxnOp]) -> dict[int, int]:
    """Which ``set`` can carry which check as a ``cas``: a check and the next
    operation on its key, when that is a ``set`` and no tree deleted in
    between covers the key (moved past that delete, the check would see its
    effect)."""
    absorbed: dict[int, int] = {}
    for position, op in enumerate(ops):
        if op.verb not in CHECK_VERBS:
            continue
        for later in range(position + 1, len(ops)):
            other = ops[later]
            if other.verb == "delete-tree" and op.key.startswith(other.key):
                break
            if other.key == op.key:
                if other.verb == "set" and later not in absorbed:
                    absorbed[later] = position
                break
    return absorbed


def _kv_op(op: TxnOp, key: str) -> dict:
    """Consul's JSON for one KV operation of ``/v1/txn`` on the Consul key ``key``."""
    if op.verb == "set":
        return {"Verb": "set", "Key": key, "Value": base64.b64encode(bytes(op.value or b"")).decode("ascii")}
    if op.verb == "check-index" and op.index:
        return {"Verb": "check-index", "Key": key, "Index": op.index}
    if op.verb in CHECK_VERBS:
        # Consul's check-index fails on a missing key whatever the index,
        # while the contract reads index 0 as "absent": same as check-not-exists.
        return {"Verb": "check-not-exists", "Key": key}
    return {"Verb": op.verb, "Key": key}


def commit_index(document: Callable[[], Any], address: str, ops: Sequence[TxnOp]) -> int:
    """The commit index in Consul's answer (200) to ``ops``, or 0 when it carries
    none (no ``set``: delete and check results have no commit index).
    ``document()`` is the parsed answer (shared by a batch's members).

    Raises ``StorageUnavailable`` naming ``address`` when the answer is unreadable."""
    try:
        results = document().get("Results") or []
    except (ValueError, AttributeError):
        raise StorageUnavailable(f"consul at {address} returned an unreadable transaction result") from None
    if not any(op.verb == "set" for op in ops):
        return 0
    # Every set of one transaction carries the commit index; check
    # results carry the checked keys' older indexes, hence max.
    return max((r["KV"]["ModifyIndex"] for r in results if "KV" in r), default=0)


def rolled_back_error(text: str, fenced: bool, ops: Sequence[TxnOp], sources: Sequence[int]) -> Exception:
    """The error for Consul's rollback (409) of ``ops``: an ACL denial, a failed
    fence (``LockLost``), a failed check (``WriteConflict``) or a bad op.

    Consul reports every failing operation with its position in the payload;
    the fence, when ``fenced``, is position 0 and the KV operations follow it,
    each answering for ``ops[sources[i]]`` (``encode_txn``)."""
    try:
        errors = json.loads(text).get("Errors") or []
    except (ValueError, AttributeError):
        errors = []
    # ACL denials come back the same way, per operation; with a fence the
    # first operation is denied too, and that must not read as a lost lock.
    if any("permission denied" in str(e.get("What", "")).lower() for e in errors):
        return error_for_status(403, "", "a transaction")
    if fenced and any(e.get("OpIndex") == 0 for e in errors):
        metrics.count_consul_error("lock_lost")
        return LockLost()
    offset = 1 if fenced else 0
    for error in errors:
        position = error.get("OpIndex")
        if isinstance(position, int) and 0 <= position - offset < len(sources):
            op = ops[sources[position - offset]]
            if op.verb in CHECK_VERBS:
                metrics.count_consul_error("write_conflict")
                return WriteConflict(key=op.key)
    metrics.count_consul_error("txn_rejected")
    reasons = "; ".join(redact_keys(str(e.get("What", "")))[:200] for e in errors) or "no reason given"
    return InvalidRequest(f"consul rolled back the transaction: {reasons}")
