"""Consul sessions, the HA lock key and blocking queries, for the HA layer.

Thin wrappers over Consul's session and KV endpoints with the same error
translation as ``ConsulBackend`` (``consul_errors``), so nothing above
``storage/`` imports py-consul.  Keys are backend-relative (``core/lock``) and
stored under the same prefix as the backend's data.

These calls deliberately do not take the backend's ``max_parallel`` slots: a
blocking query holds its connection for the whole wait, and the lock must never
queue behind data traffic.

See https://developer.hashicorp.com/consul/api-docs/session and
https://developer.hashicorp.com/consul/api-docs/features/blocking.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import consul

from strongroom.errors import InvalidRequest, LockLost, StorageUnavailable
from strongroom.storage.consul import OnConsul
from strongroom.storage.consul_address import consul_key
from strongroom.storage.consul_errors import consul_errors, error_for_status, raw_response


class ConsulSessions:
    """Session lifecycle, lock acquire/release and key watches on one Consul client.

    Invariants: every key is ``prefix + key``; every index returned is at least 1
    and is also passed to ``observe_index`` (so the backend's ``index()`` reflects
    what watches saw); all methods are thread-safe and raise only Strongroom
    errors.
    """

    def __init__(
        self,
        client: consul.Consul,
        prefix: str = "strongroom/",
        observe_index: Callable[[int], None] | None = None,
    ):
        prefix = prefix.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self._client = client
        self._prefix = prefix
        self._observe = observe_index
        self._address = client.http.base_uri

    @classmethod
    def for_backend(cls, backend: OnConsul) -> ConsulSessions:
        """Sessions sharing ``backend``'s client, prefix and index tracking."""
        return cls(backend.client, prefix=backend.prefix, observe_index=backend.observe_index)

    def create_session(
        self,
        name: str,
        checks: list[str],
        lock_delay: str = "0s",
        behavior: str = "release",
        ttl: str | None = None,
    ) -> str:
        """Create a session on the local agent's node; returns its id.

        ``checks`` is used as given: include ``serfHealth`` explicitly (an empty
        list means no health checks at all).  ``lock_delay`` and ``ttl`` are Go
        durations (``"0s"``, ``"15s"``); Consul refuses TTLs outside 10s..24h and
        checks not registered on the agent.  ``behavior`` is ``release`` or
        ``delete``.
        """
        if behavior not in ("release", "delete"):
            raise InvalidRequest(f"session behavior must be 'release' or 'delete', not {behavior!r}")
        # py-consul's Session.create only speaks whole seconds; lock-delay and
        # TTL are Go durations, so the request is built here.
        body: dict[str, object] = {"Name": name, "Checks": list(checks), "LockDelay": lock_delay, "Behavior": behavior}
        if ttl:
            body["TTL"] = ttl
        with consul_errors(self._address, "session create"):
            response = self._client.http.put(
                raw_response,
                "/v1/session/create",
                params=self._dc_params(),
                data=json.dumps(body),
                headers=self._client.prepare_headers(),
            )
        if response.code != 200:
            raise error_for_status(response.code, response.body, "session create")
        try:
            return json.loads(response.body)["ID"]
        except (ValueError, KeyError, TypeError):
            raise StorageUnavailable(f"consul at {self._address} returned an unreadable session") from None

    def destroy_session(self, session_id: str) -> None:
        """Destroy ``session_id``, releasing (or deleting) every lock it holds.

        Destroying an unknown or already destroyed session is not an error.
        """
        with consul_errors(self._address, "session destroy"):
            self._client.session.destroy(session_id)

    def renew_session(self, session_id: str) -> bool:
        """Renew a TTL session; False when Consul no longer knows it."""
        with consul_errors(self._address, "session renew"):
            try:
                self._client.session.renew(session_id)
            except consul.NotFound:
                return False
        return True

    def acquire(self, key: str, value: bytes, session: str) -> bool:
        """Try to take the lock ``key`` for ``session``, writing ``value``.

        True when ``session`` now holds the lock (also when it already did),
        False when another session holds it or lock-delay is in force.  Raises
        ``LockLost`` when ``session`` has been invalidated.
        """
        full = self._full_key(key)
        return self._lock_call("lock acquire", lambda: self._client.kv.put(full, bytes(value), acquire=session))

    def release(self, key: str, session: str) -> bool:
        """Release the lock ``key`` if ``session`` holds it, emptying its value.

        True when released; False when ``session`` did not hold it.  Consul
        writes the request body as the new value, so the holder's identity
        disappears with the release.
        """
        full = self._full_key(key)
        return self._lock_call("lock release", lambda: self._client.kv.put(full, b"", release=session))

    def wait_key(self, key: str, index: int, wait: str = "5s") -> tuple[int, bytes | None, str | None]:
        """Blocking query on ``key``: returns ``(index, value, session)``.

        With ``index`` 0 it answers at once; otherwise it returns when the key
        changes past ``index`` or after about ``wait`` (Consul adds up to
        wait/16 of jitter), possibly unchanged.  ``value`` is None when the key
        is absent; ``session`` is the lock holder or None.  Pass the returned
        index to the next call even if it went backwards (Consul may reset it
        after a snapshot restore).
        """
        with consul_errors(self._address, "a watch"):
            new_index, entry = self._client.kv.get(
                self._full_key(key), index=index or None, wait=wait, consistency="default"
            )
        # Consul documents that an index of 0 must be treated as 1, or the next
        # blocking query would return immediately forever.
        new_index = max(int(new_index), 1)
        if self._observe is not None:
            self._observe(new_index)
        if entry is None:
            return new_index, None, None
        return new_index, entry.get("Value") or b"", entry.get("Session") or None

    def _full_key(self, key: str) -> str:
        return consul_key(self._prefix, key)

    def _dc_params(self) -> list[tuple[str, str]]:
        return [("dc", self._client.dc)] if self._client.dc else []

    def _lock_call(self, what: str, call: Callable[[], object]) -> bool:
        """Run a lock call; Consul answers one on a dead session with HTTP 500
        ``invalid session``, which is a lost lock, not an unavailable store."""
        with consul_errors(self._address, what):
            try:
                return bool(call())
            except consul.ConsulException as exc:
                if "invalid session" in str(exc):
                    raise LockLost("the Consul session is no longer valid") from None
                raise
