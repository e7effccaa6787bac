"""A node's processes take turns to send Consul transactions (storage/consul_batch.py,
``CoherenceTable.claim_commit``): what arrives while another process commits joins
one batch, a full batch never waits, and a turn never granted delays a write by
``turn_wait`` at most.

The turns are a real ``CoherenceTable`` file opened by several handles, each
standing for a process (``process=``); the batcher's ``send`` records the
transactions it would have sent to Consul (its answers to Consul's own are
tested on a real agent in tests/integration/storage/test_consul_batch.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from strongroom.storage import coherence
from strongroom.storage.coherence import COMMIT_TURN_NS, CoherenceTable
from strongroom.storage.consul_batch import FULL_BATCH, TxnBatcher

WAIT = 10  # seconds; only reached when a test is already failing


@pytest.fixture
def tables(tmp_path) -> Iterator[list[CoherenceTable]]:
    """Three processes' handles on one node's table."""
    first = CoherenceTable.create(str(tmp_path / "table"))
    handles = [first] + [CoherenceTable(first.path, process=pid) for pid in (1002, 1003)]
    yield handles
    for handle in handles:
        handle.close()


def test_one_process_holds_the_turn_and_the_first_that_asked_goes_next(tables):
    a, b, c = tables
    assert a.claim_commit()
    assert not b.claim_commit()  # b is next in line
    assert not c.claim_commit()
    a.release_commit()
    assert not a.claim_commit()  # free, but b asked first
    assert not c.claim_commit()
    assert b.claim_commit()
    assert not c.claim_commit()  # c is next now
    b.release_commit()
    assert c.claim_commit()
    c.release_commit()
    assert a.claim_commit()


def test_a_process_that_stopped_waiting_leaves_the_line(tables):
    a, b, _ = tables
    assert a.claim_commit()
    assert not b.claim_commit()
    b.release_commit()  # b sent without its turn
    a.release_commit()
    assert a.claim_commit()


def test_a_turn_held_or_asked_for_too_long_is_taken_as_abandoned(tables, monkeypatch):
    a, b, c = tables
    assert a.claim_commit()
    assert not b.claim_commit()
    later = time.monotonic_ns() + COMMIT_TURN_NS + 1
    monkeypatch.setattr(coherence.time, "monotonic_ns", lambda: later)
    assert c.claim_commit()  # a died holding it, b died waiting for it


class Recorder:
    """The batcher's ``send``: records each transaction's operations and answers 200."""

    def __init__(self):
        self.sent: list[list[dict]] = []

    def __call__(self, body: bytes) -> tuple[int, str]:
        ops = json.loads(body)
        self.sent.append(ops)
        results = [{"KV": {"Key": op["KV"]["Key"], "ModifyIndex": 7}} for op in ops]
        return 200, json.dumps({"Results": results, "Errors": None})


def write(n: int) -> tuple[None, list[dict], bytes]:
    ops = [{"KV": {"Verb": "set", "Key": f"k{n}", "Value": ""}}]
    return None, ops, json.dumps(ops).encode()


def commit_in_threads(batcher: TxnBatcher, numbers) -> list[threading.Thread]:
    threads = [threading.Thread(target=batcher.commit, args=write(n)) for n in numbers]
    for thread in threads:
        thread.start()
    return threads


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.001)


def test_writes_arriving_while_another_process_commits_go_in_one_transaction(tables):
    other, mine, _ = tables
    send = Recorder()
    batcher = TxnBatcher(send, 64, 1 << 20, turns=mine, turn_wait=WAIT)
    assert other.claim_commit()  # the other worker's transaction is in flight
    threads = commit_in_threads(batcher, range(4))
    wait_for(lambda: len(batcher._queue) == 4, "the four writes never queued")
    assert send.sent == []
    other.release_commit()
    for thread in threads:
        thread.join(WAIT)
    assert [len(ops) for ops in send.sent] == [4]
    assert other.claim_commit()  # this process gave the turn back


def test_a_full_batch_is_sent_without_waiting_for_the_turn(tables):
    other, mine, _ = tables
    send = Recorder()
    batcher = TxnBatcher(send, 64, 1 << 20, turns=mine, turn_wait=WAIT)
    assert other.claim_commit()  # and never released
    threads = commit_in_threads(batcher, range(FULL_BATCH))
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads)
    assert sum(len(ops) for ops in send.sent) == FULL_BATCH
    assert len(send.sent[-1]) > 1


def test_a_turn_never_granted_delays_a_write_by_the_turn_wait_at_most(tables):
    other, mine, _ = tables
    send = Recorder()
    batcher = TxnBatcher(send, 64, 1 << 20, turns=mine, turn_wait=0.05)
    assert other.claim_commit()  # and never released
    started = time.monotonic()
    answer = batcher.commit(*write(0))
    assert answer.status == 200 and len(send.sent) == 1
    assert 0.05 <= time.monotonic() - started < WAIT / 2  # it waited, then sent anyway


def test_without_turns_a_process_sends_at_once(tables):
    send = Recorder()
    batcher = TxnBatcher(send, 64, 1 << 20)
    assert batcher.commit(*write(0)).status == 200
    assert len(send.sent) == 1
