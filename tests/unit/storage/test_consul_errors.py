"""Storage errors reach clients (a 413, a 400): their messages say what the
client can act on and never name a storage key, which would show a mount's
UUID and a secret's path or the SHA-256 of it (issue 10, finding 7)."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from strongroom.errors import RequestTooLarge
from strongroom.storage import TxnOp
from strongroom.storage.consul_errors import error_for_status
from strongroom.storage.consul_txn import check_ops, encode_txn, rolled_back_error
from strongroom.storage.inmem import InmemBackend

KIB = 1024
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def storage_keys_in(node) -> set[str]:
    return set(node.snapshot())


def assert_no_storage_key(message: str, node, secret_path: str) -> None:
    digest = hashlib.sha256(secret_path.encode()).hexdigest()
    assert digest not in message
    assert not UUID.search(message), message
    assert "logical/" not in message and "blobs/" not in message and "versions/" not in message
    for key in storage_keys_in(node):
        assert key not in message


@pytest.mark.parametrize("version", ["1", "2"])
def test_an_oversized_secret_gets_413_with_its_size_and_the_limit_and_no_storage_key(unsealed, version):
    unsealed.request("POST", "sys/mounts/big", json={"type": "kv", "options": {"version": version}})
    path = "team/db-password"
    body = {"blob": "z" * (600 * KIB)}
    before = unsealed.snapshot()
    if version == "2":
        result = unsealed.request("POST", f"big/data/{path}", json={"data": body})
    else:
        result = unsealed.request("POST", f"big/{path}", json=body)
    assert result.status_code == 413, result.text[:300]
    [message] = result.json["errors"]
    assert_no_storage_key(message, unsealed, path)
    assert path not in message
    # what the client can act on: how big the value is and what fits
    size = int(re.search(r"(\d+) bytes once encoded", message).group(1))
    assert size > 600 * KIB
    assert str(512 * KIB) in message
    assert unsealed.snapshot() == before


def test_storage_limit_messages_name_sizes_not_keys():
    key = "logical/0b0e4a55-3d1f-4a7e-9a39-6c7f1f0a9c11/blobs/" + hashlib.sha256(b"a").hexdigest() + "/1"
    with pytest.raises(RequestTooLarge) as consul_value:
        check_ops([TxnOp("set", key, b"x" * 600)], 512)
    with pytest.raises(RequestTooLarge) as inmem_value:
        InmemBackend(max_value_size=512).txn([TxnOp("set", key, b"x" * 600)])
    with pytest.raises(RequestTooLarge) as consul_txn:
        encode_txn([TxnOp("set", key, b"x" * 600)], None, str, 700)
    for caught in (consul_value, inmem_value, consul_txn):
        message = str(caught.value)
        assert key not in message and "0b0e4a55" not in message and "blobs" not in message
    assert str(consul_value.value) == str(inmem_value.value)
    assert "600 bytes" in str(consul_value.value) and "512 bytes" in str(consul_value.value)
    assert "700 bytes" in str(consul_txn.value)


def test_consul_refusals_are_passed_on_with_their_keys_redacted():
    key = "strongroom/logical/0b0e4a55-3d1f-4a7e-9a39-6c7f1f0a9c11/paths/team/db"
    too_large = error_for_status(413, f'Value for key "{key}" exceeds 524288 byte limit', "a transaction")
    rejected = error_for_status(400, f"invalid key '{key}'", "a read")
    rolled_back = rolled_back_error(
        json.dumps({"Errors": [{"OpIndex": 0, "What": f'key "{key}" does not exist'}]}),
        False,
        [TxnOp("set", "x", b"")],
        [0],
    )
    for error in (too_large, rejected, rolled_back):
        assert key not in str(error) and "0b0e4a55" not in str(error) and "team/db" not in str(error)
    assert "524288 byte limit" in str(too_large)
    assert "does not exist" in str(rolled_back)
