"""Group commit: the concurrent transactions of one process go to Consul as one.

Every Consul transaction is a raft commit (a log append and an fsync on the
leader) and an HTTP round trip; at a few hundred writes per second each commit
carries one small transaction, and Consul spends several times a plain PUT's
CPU on each.  ``TxnBatcher`` sends at most one transaction per process at a
time and puts everything that arrived meanwhile into the next one.

Semantics stay those of separate transactions:

* a batch is the concatenation of its members' operations behind one fence
  (``check-session``), applied in arrival order: a member's checks see the
  writes of the members before it, which is the order they would have had
  one after the other;
* Consul applies a batch entirely or not at all.  When it rolls one back
  (409), the members its errors point at get those errors, re-numbered as if
  they had been sent alone; the others wrote nothing and go into the next
  batch.  A failed fence or an ACL denial is every member's answer;
* any other answer, or no answer, is every member's (a timeout leaves every
  member's outcome unknown, as it would alone);
* members with different fences (the lock changed hands between them) never
  share a batch; a batch holds at most ``max_ops`` operations and
  ``max_bytes`` of JSON, and a member that would not fit alone is refused
  before it gets here.

Leadership: the first caller to find nothing in flight sends; the others
wait.  When its own answer is known the sender hands the queue to the oldest
waiting caller, which sends the next batch.

Between processes (``CommitTurns``, the node's coherence table): a node's
workers take turns, so that one transaction is in flight for the whole node
and each worker's queue fills while the other's batch is committed.  Measured
on two cores at 16 connections, two workers sending independently put ~3.8
writes in a transaction; one transaction costs Consul about as much CPU
whatever it carries (a few per cent per operation), and Consul shares the
node's cores (bench/README.md).  A sender waits for its turn at most
``TURN_WAIT``, then sends anyway, and does not wait once ``FULL_BATCH``
members are queued: the turns only shape the batches, never what a
transaction does.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from strongroom import jsoncodec

#: ``send(body) -> (status, text)``; raises for no answer (``StorageUnavailable``).
Send = Callable[[bytes], "tuple[int, str]"]

#: How long a process's sender waits for the node's turn to commit, at most, and how often it looks (seconds).
TURN_WAIT = 0.02
TURN_POLL = 0.0003
#: Members that make a batch worth sending without waiting for the turn.
FULL_BATCH = 8


class CommitTurns(Protocol):
    """Whose turn it is, among a node's processes, to send a transaction
    (``CoherenceTable.claim_commit``; see the module docstring)."""

    def claim_commit(self) -> bool:
        """Take the turn: True when it was free (and nobody else is next)."""
        ...

    def release_commit(self) -> None:
        """End this process's turn, or its place in line."""
        ...


class Answer:
    """Consul's answer to a transaction, shared by the members of its batch:
    ``document()`` parses it once for all of them (the first to ask does)."""

    __slots__ = ("status", "text", "_document", "_error")

    def __init__(self, status: int, text: str):
        self.status = status
        self.text = text
        self._document: Any = None
        self._error: ValueError | None = None

    def document(self) -> Any:
        """The parsed JSON; ``ValueError`` when it is not JSON."""
        if self._document is None and self._error is None:
            try:
                self._document = jsoncodec.loads(self.text)
            except ValueError as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._document


class _Member:
    """One caller's transaction waiting for its answer (or for its turn to send)."""

    __slots__ = ("fence_op", "ops", "body", "wake", "leads", "finished", "answer", "error")

    def __init__(self, fence_op: dict | None, ops: list[dict], body: bytes):
        self.fence_op = fence_op
        self.ops = ops
        self.body = body
        self.wake = threading.Event()
        self.leads = False
        self.finished = False
        self.answer: Answer | None = None
        self.error: BaseException | None = None

    @property
    def size(self) -> int:
        """Bytes of JSON its operations add to a batch, at most: its own body's length
        (which also holds the fence, counted once per batch)."""
        return len(self.body)

    def finish(self, answer: Answer | None = None, error: BaseException | None = None) -> None:
        self.answer, self.error, self.finished = answer, error, True
        self.wake.set()


class TxnBatcher:
    """See the module docstring.  ``commit`` is the only entry point."""

    def __init__(
        self,
        send: Send,
        max_ops: int,
        max_bytes: int,
        record_prefix: str | None = None,
        *,
        turns: CommitTurns | None = None,
        turn_wait: float = TURN_WAIT,
        sleep: Callable[[float], None] | None = None,
    ):
        self._send = send
        self._turns = turns
        self._turn_wait = turn_wait
        self._sleep = sleep or time.sleep  # looked up now: gevent patches it before workers build this
        #: Consul key prefix of the change records (storage/changes.py): a fenced member's
        #: last operation when it writes; a batch carries one record naming every member's keys.
        self._record_prefix = record_prefix
        self._max_ops = max_ops
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._queue: list[_Member] = []
        self._sending = False
        #: Transactions sent to Consul, and the members they carried (a re-sent member counts again).
        self.batches = 0
        self.members = 0

    def commit(self, fence_op: dict | None, ops: list[dict], body: bytes) -> Answer:
        """Consul's answer (status, JSON text) for ``ops`` (with ``fence_op``
        first when given) as if they had been sent alone; ``body`` is that
        transaction's JSON, sent as it is when nothing else is waiting."""
        member = _Member(fence_op, ops, body)
        with self._lock:
            self._queue.append(member)
            if not self._sending:
                self._sending = member.leads = True
        if not member.leads:
            member.wake.wait()  # answered, or handed the queue
        if not member.finished:
            try:
                while not member.finished:
                    self._await_turn()
                    try:
                        self._send_batch(self._take_batch())
                    finally:
                        if self._turns is not None:
                            self._turns.release_commit()
            finally:
                self._hand_over()
        if member.error is not None:
            raise member.error
        assert member.answer is not None  # finish() gives every member an answer or an error
        return member.answer

    # -- the sender ---------------------------------------------------------

    def _await_turn(self) -> None:
        """Wait (at most ``turn_wait``) until no other process of the node has a
        transaction in flight; what arrives meanwhile joins the batch.  A queue
        of ``FULL_BATCH`` members is sent at once: waiting would only delay it."""
        turns = self._turns
        if turns is None:
            return
        deadline = time.monotonic() + self._turn_wait
        while len(self._queue) < FULL_BATCH and not turns.claim_commit():
            if time.monotonic() >= deadline:
                return
            self._sleep(TURN_POLL)

    def _take_batch(self) -> list[_Member]:
        with self._lock:
            first = self._queue[0]
            batch, ops, size = [first], len(first.ops) + (1 if first.fence_op else 0), 0
            for member in self._queue[1:]:
                if member.fence_op != first.fence_op:
                    continue
                if ops + len(member.ops) > self._max_ops or first.size + size + member.size > self._max_bytes:
                    break
                batch.append(member)
                ops += len(member.ops)
                size += member.size
            for member in batch:
                self._queue.remove(member)
        return batch

    def _hand_over(self) -> None:
        with self._lock:
            if not self._queue:
                self._sending = False
                return
            successor = self._queue[0]
            successor.leads = True
        successor.wake.set()

    def _send_batch(self, batch: list[_Member]) -> None:
        try:
            self._answer(batch)
        finally:
            for member in batch:  # whatever went wrong here, nobody waits forever
                if not member.finished and member not in self._queue:
                    member.finish(error=RuntimeError("transaction batch failed"))

    def _answer(self, batch: list[_Member]) -> None:
        fence_op = batch[0].fence_op
        if len(batch) == 1:
            body = batch[0].body
        else:
            body = jsoncodec.dumps(([fence_op] if fence_op else []) + self._batch_ops(batch))
        self.batches += 1
        self.members += len(batch)
        try:
            status, text = self._send(body)
        except BaseException as exc:  # no answer: every member's outcome is unknown
            for member in batch:
                member.finish(error=exc)
            return
        if status != 409 or len(batch) == 1:
            # Every set of a transaction carries its commit index, the highest
            # ModifyIndex in the results: each member reads its index from the
            # whole answer as it would from its own.
            answer = Answer(status, text)
            for member in batch:
                member.finish(answer)
            return
        self._split_rollback(batch, status, text)

    def _batch_ops(self, batch: list[_Member]) -> list[dict]:
        """The members' operations in order, their change records merged into one
        at the end (one Consul operation and one pruned key per batch instead of
        per member; the record's index is the commit's, the same for all)."""
        ops: list[dict] = []
        records: list[dict] = []
        for member in batch:
            last = member.ops[-1] if member.ops else None
            if self._is_record(last):
                ops.extend(member.ops[:-1])
                records.append(last)  # type: ignore[arg-type]
            else:
                ops.extend(member.ops)
        if len(records) > 1:
            keys = b"\n".join(base64.b64decode(record["KV"]["Value"]) for record in records)
            merged = {"KV": {**records[0]["KV"], "Value": base64.b64encode(keys).decode("ascii")}}
            ops.append(merged)
        else:
            ops.extend(records)
        return ops

    def _is_record(self, op: dict | None) -> bool:
        if op is None or self._record_prefix is None:
            return False
        kv = op.get("KV") or {}
        key = str(kv.get("Key", ""))
        # Records are <prefix><hex id>; the pruner's mark (<prefix>~pruned) is not one.
        return kv.get("Verb") == "set" and key.startswith(self._record_prefix) and "~" not in key

    def _split_rollback(self, batch: list[_Member], status: int, text: str) -> None:
        try:
            errors = json.loads(text).get("Errors") or []
        except (ValueError, AttributeError):
            errors = []
        fenced = 1 if batch[0].fence_op else 0
        shared = not errors or any(
            (fenced and e.get("OpIndex") == 0) or "permission denied" in str(e.get("What", "")).lower() for e in errors
        )
        if shared:  # a lost lock, an ACL denial or an unreadable answer is everyone's
            answer = Answer(status, text)
            for member in batch:
                member.finish(answer)
            return
        retry, position = [], fenced
        for member in batch:
            # In the batch a member's change record is merged into the batch's last operation.
            end = position + len(member.ops) - (1 if self._is_record(member.ops[-1] if member.ops else None) else 0)
            own = [
                {**e, "OpIndex": e["OpIndex"] - position + fenced}
                for e in errors
                if isinstance(e.get("OpIndex"), int) and position <= e["OpIndex"] < end
            ]
            position = end
            if own:
                member.finish(Answer(status, json.dumps({"Errors": own})))
            else:
                retry.append(member)  # rolled back with the others: nothing of it was written
        if len(retry) == len(batch):  # errors that name no member's operation: everyone's answer
            answer = Answer(status, text)
            for member in batch:
                member.finish(answer)
            return
        with self._lock:
            self._queue[:0] = retry
