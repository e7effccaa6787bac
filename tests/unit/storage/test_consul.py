"""``ConsulBackend.get_prefix`` (storage/consul.py): answers the real agent cannot produce here (Consul 1.8):
a transport stands in for HTTP, as hvac's unit tests do; tests/integration/storage
covers the real agent."""

from __future__ import annotations

import base64
import json

import consul
import pytest

from strongroom.errors import StorageUnavailable
from strongroom.storage.consul import ConsulBackend
from strongroom.storage.consul_transport import Answer


class Transport:
    """Answers every request with ``answer`` and records the requests."""

    def __init__(self, answer: Answer):
        self.answer = answer
        self.requests = []

    def request(self, method, path, params, body=None):
        self.requests.append((method, path, params))
        return self.answer


def backend_answering(answer: Answer) -> tuple[ConsulBackend, Transport]:
    backend = ConsulBackend(consul.Consul(host="127.0.0.1", port=1), prefix="sr/")
    transport = Transport(answer)
    backend._http = transport
    return backend, transport


def entry(key: str, value: bytes | None, index: int) -> dict:
    return {"Key": key, "Value": None if value is None else base64.b64encode(value).decode(), "ModifyIndex": index}


def test_recursive_read_of_the_full_prefix():
    body = json.dumps([entry("sr/f/a", b"1", 7), entry("sr/f/b", None, 9)]).encode()
    backend, transport = backend_answering(Answer(200, 9, body))
    assert backend.get_prefix("f/") == {"f/a": (b"1", 7), "f/b": (b"", 9)}
    assert transport.requests == [("GET", "/v1/kv/sr/f/", [("recurse", "")])]
    assert backend.index() == 9


def test_entries_filtered_by_acl_are_a_denial_not_an_empty_folder():
    backend, _ = backend_answering(Answer(404, 9, b"", acl_filtered=True))
    with pytest.raises(StorageUnavailable, match="ACL token"):
        backend.get_prefix("f/")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        json.dumps([{"Key": "sr/f/a"}]).encode(),
        json.dumps([entry("sr/elsewhere", b"1", 3)]).encode(),
    ],
)
def test_unreadable_answers_are_storage_unavailable(body):
    backend, _ = backend_answering(Answer(200, 9, body))
    with pytest.raises(StorageUnavailable, match="unreadable"):
        backend.get_prefix("f/")
