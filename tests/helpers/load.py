"""Bounded client load for the fault tier: a steady stream of writes through the
front door, recording every acknowledged write so the test can prove none was lost."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid

import requests


class WriteLoad:
    """One thread writing ``<mount>/load/<n>`` in sequence until stopped or ``max_seconds`` pass.

    ``acked`` holds ``(key, value, node, monotonic time)`` for every write the
    service acknowledged (2xx); ``failures`` the time and status/error of the
    rest.  Writes are never retried by the client: a failure is just recorded.
    """

    def __init__(
        self,
        url: str,
        token: str,
        mount: str = "kv",
        max_seconds: float = 120.0,
        pause: float = 0.005,
        verify: bool | str = True,
    ):
        self.url = url.rstrip("/")
        self.verify = verify
        self.token = token
        self.mount = mount
        self.max_seconds = max_seconds
        self.pause = pause
        self.acked: list[tuple[str, str, str, float]] = []
        self.failures: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="write-load", daemon=True)
        self._run_id = uuid.uuid4().hex[:6]

    def start(self) -> WriteLoad:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def acked_since(self, moment: float) -> int:
        return sum(1 for *_, at in self.acked if at > moment)

    def _run(self) -> None:
        session = requests.Session()
        deadline = time.monotonic() + self.max_seconds
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            n += 1
            key = f"load/{self._run_id}-{n}"
            value = uuid.uuid4().hex
            try:
                answer = session.put(
                    f"{self.url}/v1/{self.mount}/{key}",
                    json={"value": value},
                    headers={"X-Vault-Token": self.token},
                    timeout=5,
                    # Per request: a session's own verify loses to REQUESTS_CA_BUNDLE.
                    verify=self.verify,
                )
                if 200 <= answer.status_code < 300:
                    self.acked.append((key, value, answer.headers.get("X-Strongroom-Node", ""), time.monotonic()))
                else:
                    self.failures.append((time.monotonic(), str(answer.status_code)))
            except requests.RequestException as exc:
                self.failures.append((time.monotonic(), type(exc).__name__))
            time.sleep(self.pause)

    def unacknowledged_or_wrong(self, read) -> list[str]:
        """Keys whose acknowledged value is not what ``read(key)`` returns now."""
        bad = []
        for key, value, _, _ in self.acked:
            got = read(key)
            if got != value:
                bad.append(f"{key}: acknowledged {value}, stored {got}")
        return bad

    def longest_gap(self, after: float) -> float:
        """The longest time without an acknowledged write, after ``after``."""
        times = [after] + [at for *_, at in self.acked if at > after]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


class LockHistory:
    """Records every holder of the HA lock key as Consul reports it (blocking queries):
    ``(modify index of the lock key, session or None, lock value)``.  Every
    acquire and release modifies the key, so a write committed at index ``i``
    was fenced by the holder of the last change before ``i``."""

    def __init__(self, consul_client, key: str):
        self._client = consul_client
        self._key = key
        self.changes: list[tuple[int, str | None, bytes | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LockHistory:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        index = None
        last = object()
        while not self._stop.is_set():
            try:
                index, entry = self._client.kv.get(self._key, index=index, wait="1s")
            except Exception:
                time.sleep(0.05)
                continue
            holder = entry.get("Session") if entry else None
            if holder != last:
                self.changes.append(
                    (int(entry["ModifyIndex"]) if entry else int(index), holder, entry.get("Value") if entry else None)
                )
                last = holder

    def holder_at(self, index: int) -> str | None:
        """The node id whose session held the lock when a write committed at ``index``."""
        holder = None
        for changed_at, session, value in self.changes:
            if changed_at >= index:
                break
            holder = json.loads(value)["node_id"] if session and value else None
        return holder
