"""The change log (storage/changes.py) read from Consul: a blocking listing of
``changes/``, and the values of the records a follower has not seen yet."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

import consul

from strongroom.errors import StorageUnavailable
from strongroom.storage.changes import PREFIX
from strongroom.storage.consul import OnConsul
from strongroom.storage.consul_errors import consul_errors

#: Operations in one Consul transaction (its limit).
TXN_OPS = 64


class ConsulChangeFeed:
    """``changes.ChangeFeed`` on Consul.

    ``wait`` is a blocking query on the prefix's *keys* (``?keys``): an answer
    lists every record, and the standbys ask again after each write, so it
    must not carry every record's value as well (with values and Consul's
    gzip, one following standby more than doubled Consul's CPU per write).
    ``read`` then takes only the new records' values, in read-only
    transactions.  Default consistency: the leader answers, after applying
    every commit it acknowledged, so a record of an acknowledged write is in
    any answer whose index is at or after the write's."""

    def __init__(self, client: consul.Consul, prefix: str):
        self._client = client
        self._prefix = prefix
        self._address = client.http.base_uri

    @classmethod
    def for_backend(cls, backend: OnConsul) -> ConsulChangeFeed:
        return cls(backend.client, backend.prefix)

    def wait(self, index: int, wait: str) -> tuple[int, list[str]]:
        with consul_errors(self._address, "a change-log watch"):
            new_index, keys = self._client.kv.get(
                self._prefix + PREFIX, keys=True, index=index or None, wait=wait, consistency="default"
            )
        strip = len(self._prefix)
        # Consul documents that an index of 0 must be treated as 1.
        return max(int(new_index or 1), 1), [key[strip:] for key in keys or []]

    def read(self, keys: Sequence[str]) -> dict[str, bytes] | None:
        values: dict[str, bytes] = {}
        strip = len(self._prefix)
        for start in range(0, len(keys), TXN_OPS):
            ops = [{"KV": {"Verb": "get", "Key": self._prefix + key}} for key in keys[start : start + TXN_OPS]]
            with consul_errors(self._address, "a change-log read"):
                answer = self._client.http.put(lambda response: response, "/v1/txn", data=json.dumps(ops))
            if answer.code == 409:
                return None  # a key is gone: a "get" of an absent key rolls the transaction back
            if answer.code != 200:
                raise StorageUnavailable(f"consul at {self._address} answered {answer.code} to a change-log read")
            try:
                for result in json.loads(answer.body)["Results"]:
                    entry = result["KV"]
                    values[entry["Key"][strip:]] = base64.b64decode(entry.get("Value") or "")
            except (ValueError, KeyError, TypeError):
                raise StorageUnavailable(
                    f"consul at {self._address} returned an unreadable answer to a change-log read"
                ) from None
        return values
