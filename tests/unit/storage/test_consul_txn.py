"""How ``TxnOp`` lists become Consul's ``/v1/txn`` operations (storage/consul_txn.py).

A check followed by the ``set`` of its key travels as one ``cas`` (what every
read-modify-write sends); everything else as it is.  What Consul does with
them is tested against a real agent in tests/integration/storage.
"""

from __future__ import annotations

import json

from strongroom.errors import LockLost
from strongroom.storage import TxnOp, WriteConflict
from strongroom.storage.consul_txn import encode_txn, rolled_back_error


def encode(ops, fence=None):
    fence_op, kv_ops, body, sources = encode_txn(ops, fence, lambda key: "p/" + key, 512 * 1024)
    assert json.loads(body) == ([fence_op] if fence_op else []) + kv_ops
    return [(op["KV"]["Verb"], op["KV"]["Key"], op["KV"].get("Index")) for op in kv_ops], sources


def test_a_check_and_the_set_of_its_key_become_one_cas():
    ops = [TxnOp("check-index", "meta", index=7), TxnOp("set", "v/1", b"d"), TxnOp("set", "meta", b"m")]
    assert encode(ops) == ([("set", "p/v/1", None), ("cas", "p/meta", 7)], [1, 0])


def test_absent_means_cas_index_zero():
    for check in (TxnOp("check-not-exists", "k"), TxnOp("check-index", "k", index=0)):
        assert encode([check, TxnOp("set", "k", b"v")]) == ([("cas", "p/k", 0)], [0])


def test_the_value_travels_with_the_cas():
    _, kv_ops, _, _ = encode_txn(
        [TxnOp("check-index", "k", index=3), TxnOp("set", "k", b"\x00v")], None, str, 512 * 1024
    )
    assert kv_ops == [{"KV": {"Verb": "cas", "Key": "k", "Index": 3, "Value": "AHY="}}]


def test_checks_that_cannot_travel_with_a_set_stay_checks():
    cases = {
        "nothing written": [TxnOp("check-index", "k", index=3)],
        "deleted next": [TxnOp("check-index", "k", index=3), TxnOp("delete", "k"), TxnOp("set", "k", b"v")],
        "a tree delete between": [
            TxnOp("check-index", "a/k", index=3),
            TxnOp("delete-tree", "a/"),
            TxnOp("set", "a/k", b"v"),
        ],
        "another key": [TxnOp("check-index", "k", index=3), TxnOp("set", "j", b"v")],
    }
    for name, ops in cases.items():
        verbs = [verb for verb, _, _ in encode(ops)[0]]
        assert "cas" not in verbs and verbs[0] == "check-index", name


def test_a_failed_cas_is_a_conflict_on_its_key_even_in_a_fenced_transaction():
    ops = [TxnOp("set", "side", b"x"), TxnOp("check-index", "k", index=3), TxnOp("set", "k", b"v")]
    _, sources = encode(ops)
    answer = json.dumps({"Errors": [{"OpIndex": 2, "What": 'failed to set key "p/k", index is stale'}]})
    error = rolled_back_error(answer, True, ops, sources)
    assert isinstance(error, WriteConflict) and error.key == "k"
    fence = json.dumps({"Errors": [{"OpIndex": 0, "What": "lock not held"}]})
    assert isinstance(rolled_back_error(fence, True, ops, sources), LockLost)
