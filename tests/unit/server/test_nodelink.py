"""The node link (server/nodelink.py): the node core pushes, workers acknowledge.

A real ``NodeLinkServer`` and real ``NodeLink`` workers over a Unix socket in
a private temporary directory.  A "silent" worker is a raw socket that
subscribes and reads its pushes but never acknowledges them.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from strongroom import errors
from strongroom.barrier.keyring import Keyring
from strongroom.server.nodelink import ACK_TIMEOUT, NodeLink, NodeLinkServer, keyring_event

DEADLINE = 5.0


def eventually(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.005)


def clock() -> datetime:
    return datetime(2026, 1, 2, tzinfo=UTC)


class Worker:
    """A ``NodeLink`` with everything it was pushed recorded."""

    def __init__(self, path: str, slow: float = 0.0):
        self.invalidated: list[list[str]] = []
        self.ha: list[dict] = []
        self.keyring_calls = 0
        self._slow = slow
        self.link = NodeLink(path, connect_timeout=DEADLINE)
        self.link.on_invalidate = self._invalidate
        self.link.on_ha = self.ha.append
        self.link.on_keyring = self._keyring

    def _invalidate(self, keys: list[str]) -> None:
        time.sleep(self._slow)  # a worker busy dropping its caches
        self.invalidated.append(keys)

    def _keyring(self) -> None:
        self.keyring_calls += 1


class SilentWorker:
    """Subscribes and reads every push, never acknowledges one."""

    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.sendall(b'{"op": "subscribe"}\n')
        self.file = self.sock.makefile("rb")
        self.first = json.loads(self.file.readline())  # subscribed: the server counts it from now on
        self.events: list[dict] = []
        self.ended = threading.Event()  # the node core hung up
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.file:
                self.events.append(json.loads(line))
        except (OSError, ValueError):
            pass
        finally:
            self.ended.set()

    def close(self) -> None:
        # shutdown, not only close: the descriptor stays open while the reader's file object is.
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.fixture
def socket_path() -> Iterator[str]:
    # Short and private: a Unix socket path holds at most 107 bytes; pytest's tmp_path may not fit.
    with tempfile.TemporaryDirectory(prefix="nodelink-") as folder:
        os.chmod(folder, 0o700)
        yield os.path.join(folder, "node.sock")


class NodeCore:
    """The node core's side: a server with a keyring, an HA state and a few calls."""

    def __init__(self, path: str):
        self.keyring: Keyring | None = Keyring.generate(clock)
        self.ha = {"enabled": True, "role": "active", "session": "session-1"}
        self.server = NodeLinkServer(
            path,
            {"status": self._status, "fail": self._fail, "crash": self._crash},
            state=lambda: {**keyring_event(self.keyring), "ha": self.ha},
        )
        self.server.start()

    @staticmethod
    def _status(request: dict) -> dict:
        return {"sealed": False, "echo": request.get("echo")}

    @staticmethod
    def _fail(request: dict) -> None:
        raise errors.Sealed("Vault is sealed")

    @staticmethod
    def _crash(request: dict) -> None:
        raise RuntimeError("a bug in the node core")


@pytest.fixture
def core(socket_path) -> Iterator[NodeCore]:
    node_core = NodeCore(socket_path)
    yield node_core
    node_core.server.close()


def test_the_socket_is_private(core, socket_path):
    assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o600


def test_a_new_worker_gets_the_current_keyring_and_role(core, socket_path):
    worker = Worker(socket_path)
    assert worker.link.keyring().serialize() == core.keyring.serialize()
    assert worker.link.ha()["role"] == "active"
    assert worker.link.fence() == ("core/lock", "session-1")


def test_a_keyring_push_reaches_every_worker_before_publish_returns(core, socket_path):
    workers = [Worker(socket_path), Worker(socket_path)]
    rotated = core.keyring.rotate(clock)
    core.server.publish(keyring_event(rotated))
    for worker in workers:
        assert worker.link.keyring().serialize() == rotated.serialize()
        assert worker.link.keyring().active_key().term == 2
    core.server.publish(keyring_event(None))  # sealed: the workers forget the keys
    assert [worker.link.keyring() for worker in workers] == [None, None]


def test_publish_waits_for_every_workers_acknowledgement(core, socket_path):
    workers = [Worker(socket_path, slow=0.1), Worker(socket_path, slow=0.1)]
    core.server.publish({"invalidate": ["mounts", "policy/reader"]})
    # No polling: the call returned only once both had applied the push and acknowledged it.
    assert [worker.invalidated for worker in workers] == [[["mounts", "policy/reader"]]] * 2


def test_losing_the_lock_is_pushed_and_the_worker_refuses_to_write(core, socket_path):
    worker = Worker(socket_path)
    assert worker.link.fence() == ("core/lock", "session-1")
    core.server.publish({"ha": {"enabled": True, "role": "perfstandby", "session": "", "leader_node": "b"}})
    assert worker.ha[-1]["role"] == "perfstandby"
    with pytest.raises(errors.ReadOnly):
        worker.link.fence()
    core.server.publish({"ha": {"enabled": True, "role": "active", "session": ""}})
    with pytest.raises(errors.ReadOnly):  # active without a session is no fence either
        worker.link.fence()


def test_a_worker_that_never_acknowledges_delays_a_push_by_at_most_the_ack_timeout(core, socket_path):
    silent = SilentWorker(socket_path)
    worker = Worker(socket_path)
    started = time.monotonic()
    core.server.publish({"invalidate": ["mounts"]})
    elapsed = time.monotonic() - started
    assert ACK_TIMEOUT <= elapsed < ACK_TIMEOUT + 2.0
    assert worker.invalidated == [["mounts"]]
    eventually(lambda: [e.get("invalidate") for e in silent.events] == [["mounts"]], "the silent worker got it")
    # The next push is not held up by the old one, and still reaches everyone.
    core.server.publish({"invalidate": ["audit"]})
    assert worker.invalidated == [["mounts"], ["audit"]]
    silent.close()


def test_a_worker_that_went_away_does_not_hold_up_a_push(core, socket_path):
    silent = SilentWorker(socket_path)
    worker = Worker(socket_path)
    silent.close()
    started = time.monotonic()
    core.server.publish({"invalidate": ["mounts"]})
    core.server.publish({"invalidate": ["audit"]})
    # Dead workers are dropped, not waited for: waiting would take an ack timeout per push.
    assert time.monotonic() - started < 2 * ACK_TIMEOUT
    assert worker.invalidated == [["mounts"], ["audit"]]


def test_calls_return_results_and_domain_errors_by_class(core, socket_path):
    worker = Worker(socket_path)
    assert worker.link.call("status", echo="x") == {"sealed": False, "echo": "x"}
    with pytest.raises(errors.Sealed) as raised:
        worker.link.call("fail")
    assert raised.value.messages == ["Vault is sealed"]


def test_a_bug_in_the_node_core_is_an_internal_error_without_details(core, socket_path, caplog):
    worker = Worker(socket_path)
    with pytest.raises(errors.StrongroomError) as raised:
        worker.link.call("crash")
    assert type(raised.value) is errors.StrongroomError
    assert raised.value.messages == ["internal error"]
    assert "crash" in caplog.text  # logged in the node core, never sent to the worker


#: A node core in a process of its own, so that it can really go away: it
#: prints its keyring (as pushed) and serves until killed.
NODE_CORE = """
import sys
from datetime import UTC, datetime
from strongroom.barrier.keyring import Keyring
from strongroom.server.nodelink import NodeLinkServer, keyring_event
event = keyring_event(Keyring.generate(lambda: datetime(2026, 1, 2, tzinfo=UTC)))
server = NodeLinkServer(sys.argv[1], {"status": lambda req: {"sealed": False}}, state=lambda: {**event, "ha": {}})
server.start()
print(event["keyring"], flush=True)
sys.stdin.read()
"""


@pytest.fixture
def node_core_process(socket_path):
    """Starts node core processes on ``socket_path``; kills each by its own process at the end."""
    started: list[subprocess.Popen] = []

    def start() -> tuple[subprocess.Popen, str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", NODE_CORE, socket_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        started.append(proc)
        return proc, proc.stdout.readline().strip()

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()


def serialized(keyring: Keyring | None) -> str | None:
    return keyring_event(keyring)["keyring"]


def test_a_worker_acts_sealed_when_the_node_core_goes_away(node_core_process, socket_path):
    proc, keyring = node_core_process()
    worker = Worker(socket_path)
    assert serialized(worker.link.keyring()) == keyring
    calls = worker.keyring_calls
    proc.kill()
    proc.wait()
    eventually(lambda: worker.link.keyring() is None, "the worker dropped its keyring")
    assert worker.keyring_calls > calls  # the owner heard it too
    with pytest.raises(errors.StorageUnavailable):
        worker.link.call("status")


def test_a_worker_resubscribes_when_the_node_core_comes_back(node_core_process, socket_path):
    proc, _ = node_core_process()
    worker = Worker(socket_path)
    proc.kill()
    proc.wait()
    eventually(lambda: worker.link.keyring() is None, "the worker dropped its keyring")
    _, keyring = node_core_process()
    eventually(lambda: serialized(worker.link.keyring()) == keyring, "the worker resubscribed")
    assert worker.link.call("status") == {"sealed": False}


class StuckWorker:
    """Subscribes, then never reads again (a stuck or SIGSTOPped worker): its socket buffer fills."""

    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(path)
        self.sock.sendall(b'{"op": "subscribe"}\n')

    def closed_by_peer(self) -> bool:
        """Whether the node core hung up (after draining what it had sent)."""
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except BlockingIOError:
            return False
        except OSError:
            return True


def test_several_silent_workers_delay_a_push_by_one_ack_timeout_in_all(core, socket_path):
    silent = [SilentWorker(socket_path) for _ in range(4)]
    started = time.monotonic()
    core.server.publish({"invalidate": ["mounts"]})
    elapsed = time.monotonic() - started
    assert ACK_TIMEOUT <= elapsed < 2 * ACK_TIMEOUT, elapsed  # not one timeout per silent worker
    for worker in silent:
        worker.close()


def test_a_worker_that_stops_reading_never_blocks_the_node_core(core, socket_path):
    stuck = StuckWorker(socket_path)
    worker = Worker(socket_path)
    big = {"invalidate": [f"policy/{'x' * 200}-{i}" for i in range(50)]}  # ~11 KB a push
    started = time.monotonic()
    for _ in range(40):  # far more than the stuck worker's buffers hold
        core.server.publish(big)
    # Each push is bounded (send timeout + ack timeout), and the stuck worker is dropped on
    # the first push it cannot take, so the rest go at the speed of the healthy worker.
    assert time.monotonic() - started < 40 * ACK_TIMEOUT
    assert len(worker.invalidated) == 40
    eventually(stuck.closed_by_peer, "the stuck worker's subscription was ended")
    # New subscriptions and pushes still work.
    late = Worker(socket_path)
    core.server.publish({"invalidate": ["audit"]})
    assert late.invalidated == [["audit"]] and worker.invalidated[-1] == ["audit"]


def test_closing_the_server_disconnects_its_workers(socket_path):
    node_core = NodeCore(socket_path)
    silent = SilentWorker(socket_path)
    node_core.server.close()
    eventually(silent.ended.is_set, "the worker saw the node core hang up")
    silent.close()


def test_a_worker_without_news_of_the_active_node_waits_for_it(core, socket_path):
    """A worker may hear of an election a moment after its node core (the unseal
    that opened the node answered, a failover): a request that meets "standby,
    no active node known" waits for the node core's next push, bounded, before
    anyone answers 503 (Core.await_leader, api/logical.py)."""
    from strongroom.core.core import Core
    from strongroom.storage.inmem import InmemBackend

    core.ha = {"enabled": True, "role": "perfstandby", "session": "", "leader_address": ""}
    worker = Worker(socket_path)
    node = Core(InmemBackend(), worker.link, backends={})
    waiting = node.ha_state()
    assert node.awaits_leader(waiting)

    # No news: the wait ends at its bound with the state it had.
    started = time.monotonic()
    assert node.await_leader(waiting, 0.3)["role"] == "perfstandby"
    assert 0.3 <= time.monotonic() - started < DEADLINE

    # The election's news arrives while the request waits: it goes on as the active node's.
    active = {"enabled": True, "role": "active", "session": "session-2", "leader_address": "http://a"}
    threading.Timer(0.2, core.server.publish, args=({"ha": active},)).start()
    started = time.monotonic()
    assert node.await_leader(waiting, DEADLINE)["role"] == "active"
    assert time.monotonic() - started < DEADLINE
    assert not node.awaits_leader(node.ha_state())
