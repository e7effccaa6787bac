"""The change log (storage/changes.py) read from Consul with blocking queries."""

from __future__ import annotations

import consul

from strongroom.storage.changes import PREFIX
from strongroom.storage.consul import OnConsul
from strongroom.storage.consul_errors import consul_errors


class ConsulChangeFeed:
    """``changes.ChangeFeed`` on Consul: a recursive blocking query on ``changes/``.

    Default consistency: the leader answers, after applying every commit it
    acknowledged, so a record of an acknowledged write is in any answer
    whose index is at or after the write's."""

    def __init__(self, client: consul.Consul, prefix: str):
        self._client = client
        self._prefix = prefix
        self._address = client.http.base_uri

    @classmethod
    def for_backend(cls, backend: OnConsul) -> ConsulChangeFeed:
        return cls(backend.client, backend.prefix)

    def wait(self, index: int, wait: str) -> tuple[int, list[tuple[str, int, bytes]]]:
        with consul_errors(self._address, "a change-log watch"):
            new_index, entries = self._client.kv.get(
                self._prefix + PREFIX, recurse=True, index=index or None, wait=wait, consistency="default"
            )
        strip = len(self._prefix)
        records = [(e["Key"][strip:], int(e["ModifyIndex"]), e.get("Value") or b"") for e in entries or []]
        # Consul documents that an index of 0 must be treated as 1.
        return max(int(new_index or 1), 1), records
