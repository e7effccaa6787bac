"""The change log's feed on a real Consul agent (storage/consul_changes.py).

A blocking listing carries the records' keys only; their values are read
once, in read-only transactions, and a record pruned before it was read is
reported (None), never skipped.  The node core's client asks Consul for
answers without gzip.
"""

from __future__ import annotations

import threading
import time

import requests

from strongroom.storage.changes import PREFIX, PRUNED_KEY
from strongroom.storage.consul import ConsulBackend
from strongroom.storage.consul_changes import TXN_OPS, ConsulChangeFeed


def test_a_listing_names_the_records_and_a_read_gives_their_values(consul_backend: ConsulBackend):
    feed = ConsulChangeFeed.for_backend(consul_backend)
    consul_backend.put(PREFIX + "r1", b"logical/a\nlogical/b")
    index = consul_backend.put(PREFIX + "r2", b"*logical/")
    consul_backend.put(PRUNED_KEY, b"7")
    listed_index, listed = feed.wait(0, "0s")
    assert sorted(listed) == [PREFIX + "r1", PREFIX + "r2", PRUNED_KEY]
    assert listed_index > index
    assert feed.read([PREFIX + "r1", PREFIX + "r2", PRUNED_KEY]) == {
        PREFIX + "r1": b"logical/a\nlogical/b",
        PREFIX + "r2": b"*logical/",
        PRUNED_KEY: b"7",
    }
    assert feed.read([]) == {}


def test_more_records_than_one_transaction_holds_are_read_whole(consul_backend: ConsulBackend):
    feed = ConsulChangeFeed.for_backend(consul_backend)
    keys = [PREFIX + f"r{n:03}" for n in range(TXN_OPS * 2 + 5)]
    for key in keys:
        consul_backend.put(key, key.encode())
    assert feed.read(keys) == {key: key.encode() for key in keys}


def test_a_record_pruned_before_it_was_read_is_reported(consul_backend: ConsulBackend):
    feed = ConsulChangeFeed.for_backend(consul_backend)
    consul_backend.put(PREFIX + "kept", b"k")
    consul_backend.put(PREFIX + "pruned", b"k")
    _, listed = feed.wait(0, "0s")
    consul_backend.delete(PREFIX + "pruned")
    assert feed.read(sorted(listed)) is None
    assert feed.read([PREFIX + "kept"]) == {PREFIX + "kept": b"k"}


def test_a_listing_waits_for_the_next_record(consul_backend: ConsulBackend):
    feed = ConsulChangeFeed.for_backend(consul_backend)
    consul_backend.put(PREFIX + "r1", b"k")
    index, _ = feed.wait(0, "0s")
    writer = threading.Timer(0.3, consul_backend.put, (PREFIX + "r2", b"k"))
    writer.start()
    began = time.monotonic()
    new_index, listed = feed.wait(index, "10s")
    writer.join()
    assert new_index > index
    assert PREFIX + "r2" in listed
    assert time.monotonic() - began < 5  # the write ended the wait, not the 10 s


def test_the_node_cores_client_asks_consul_for_answers_without_gzip(consul_backend: ConsulBackend):
    for n in range(50):
        consul_backend.put(PREFIX + f"r{n}", b"logical/some/key\n" * 20)
    url = f"{consul_backend.client.http.base_uri}/v1/kv/{consul_backend.prefix}{PREFIX}?recurse=true"
    plain = consul_backend.client.http.session.get(url, timeout=10)
    assert plain.status_code == 200
    assert "Content-Encoding" not in plain.headers
    # What it would cost otherwise: a client that accepts gzip gets it.
    zipped = requests.get(url, headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert zipped.headers.get("Content-Encoding") == "gzip"
