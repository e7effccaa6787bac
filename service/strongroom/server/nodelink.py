"""The link between a node's workers and its node core process.

The node core owns the node-wide state: the ``SealManager`` (unseal progress and
keyring, in its memory only) and, with HA, the lock and the active/standby role.
Workers are separate processes; each holds a ``NodeLink``, which implements
``SealControl`` by calling the node core over a Unix socket and keeps a copy of
the keyring that the node core pushes to every worker on each change.

Protocol: newline-delimited JSON.  A worker opens one *subscription* connection
(``{"op": "subscribe"}``) on which the node core pushes ``{"seq", "keyring",
"invalidate", "ha"}`` events and the worker answers ``{"ack": seq}``; every other
call is one request/response on a fresh connection.  A change (unseal, seal,
rotate, an invalidation) is acknowledged to its caller only after every worker
acknowledged the push or ``ACK_TIMEOUT`` passed, so a client that unsealed
through one worker finds every worker unsealed on its next request.

Security: the socket lives in a 0700 directory and the server checks the peer's
uid (SO_PEERCRED) against its own.  Nothing is logged from these messages.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strongroom import errors
from strongroom.barrier.keyring import Keyring
from strongroom.core.ha import LOCK_KEY

if TYPE_CHECKING:
    from strongroom.core.ha import HAManager
    from strongroom.core.seal import SealManager

log = logging.getLogger("strongroom.nodelink")

ACK_TIMEOUT = 0.5
# A worker that stops reading (stuck, SIGSTOPped) fills its socket buffer; a push to it then
# gives up after this long and the worker is dropped (it resubscribes when it reads again),
# so the node core never blocks on one worker.
SEND_TIMEOUT = 0.5
# The unseal that opens a node answers once the node is active or knows the active
# node (HAManager.settle), waiting at most this long (one election round is ~10 ms).
UNSEAL_SETTLE_SECONDS = 2.0


def _encode_keyring(keyring: Keyring | None) -> str | None:
    return base64.b64encode(keyring.serialize()).decode() if keyring is not None else None


def _decode_keyring(value: str | None) -> Keyring | None:
    return Keyring.deserialize(base64.b64decode(value)) if value else None


def _error_from(payload: dict) -> errors.StrongroomError:
    cls = getattr(errors, payload.get("class", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.StrongroomError)):
        cls = errors.StrongroomError
    return cls(*payload.get("messages", []))


class _Subscriber:
    """One worker's subscription: its connection and the last push it acknowledged."""

    def __init__(self, conn: socket.socket, file: io.BufferedIOBase):
        self.conn = conn
        self.file = file
        self.acked = 0
        self.cond = threading.Condition()
        self.alive = True
        # Bounds sends only: the subscription's reads (acks) keep blocking without a timeout.
        seconds = int(SEND_TIMEOUT)
        conn.setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", seconds, int((SEND_TIMEOUT - seconds) * 1e6))
        )

    def send(self, message: dict) -> None:
        """Write one push; on a timeout or error the worker is dropped (and OSError raised):
        a push half-written is never followed by another on the same connection."""
        data = (json.dumps(message) + "\n").encode()
        with self.cond:
            try:
                self.file.write(data)
                self.file.flush()
            except OSError:
                self.drop()
                raise

    def drop(self) -> None:
        """End the subscription: the worker sees the connection close and resubscribes."""
        with self.cond:
            self.alive = False
            self.cond.notify_all()
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone

    def wait_acked(self, seq: int, timeout: float) -> None:
        """Until the worker acknowledged push ``seq``, went away, or ``timeout`` passed."""
        with self.cond:
            self.cond.wait_for(lambda: self.acked >= seq or not self.alive, timeout=timeout)


class NodeLinkServer:
    """The node core side: serves calls and pushes state to subscribed workers.

    ``handlers`` maps an op name to a function of the request dict returning a
    JSON-able result; domain errors travel back by class name.  ``state()``
    returns the event pushed to a newly subscribed worker.
    """

    def __init__(self, path: str, handlers: dict[str, Callable[[dict], object]], state: Callable[[], dict]):
        self.path = path
        self._handlers = handlers
        self._state = state
        self._subscribers: list[_Subscriber] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._sock: socket.socket | None = None
        self._closed = False

    def start(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.path)
        os.chmod(self.path, 0o600)
        sock.listen(128)
        self._sock = sock
        threading.Thread(target=self._accept_loop, args=(sock,), name="nodelink-accept", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        if self._sock is not None:
            self._sock.close()
        with self._lock:
            for sub in self._subscribers:
                sub.drop()  # close() alone would leave the connection open while its file object lives
                sub.conn.close()

    def _accept_loop(self, sock: socket.socket) -> None:
        while not self._closed:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _, uid, _ = struct.unpack("3i", creds)
            if uid != os.getuid():
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        file = conn.makefile("rwb")
        subscribed = False
        try:
            line = file.readline()
            if not line:
                return
            request = json.loads(line)
            if request.get("op") == "subscribe":
                subscribed = True
                self._subscribe(conn, file)
                return
            try:
                reply = {"ok": True, "result": self._handlers[request["op"]](request)}
            except errors.StrongroomError as exc:
                reply = {"ok": False, "error": {"class": type(exc).__name__, "messages": exc.messages}}
            except Exception:
                log.exception("node core call %s failed", request.get("op"))
                reply = {"ok": False, "error": {"class": "StrongroomError", "messages": ["internal error"]}}
            file.write((json.dumps(reply) + "\n").encode())
            file.flush()
        except (OSError, ValueError):
            pass
        finally:
            if not subscribed:
                conn.close()

    def _subscribe(self, conn: socket.socket, file: io.BufferedIOBase) -> None:
        """Serve one worker's subscription until it disconnects (closes ``conn``)."""
        sub = _Subscriber(conn, file)
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._subscribers.append(sub)
            sub.send({"seq": seq, **self._state()})
        try:
            for line in sub.file:
                ack = json.loads(line).get("ack", 0)
                with sub.cond:
                    sub.acked = max(sub.acked, ack)
                    sub.cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            sub.alive = False
            with self._lock:
                if sub in self._subscribers:
                    self._subscribers.remove(sub)
            conn.close()

    def publish(self, event: dict) -> None:
        """Push ``event`` to every worker and wait (bounded) for their acks."""
        with self._lock:
            self._seq += 1
            seq = self._seq
            subscribers = list(self._subscribers)
            for sub in subscribers:
                try:
                    sub.send({"seq": seq, **event})
                except OSError:
                    pass  # dropped by send
        # One bound for the whole push, however many workers stay silent.
        deadline = time.monotonic() + ACK_TIMEOUT
        for sub in subscribers:
            sub.wait_acked(seq, max(0.0, deadline - time.monotonic()))


def keyring_event(keyring: Keyring | None) -> dict:
    """The push announcing a keyring change (unseal, seal, rotate)."""
    return {"keyring": _encode_keyring(keyring), "keyring_changed": True}


class NodeLink:
    """The worker side: ``core.seal.NodeControl`` (seal and HA state) backed by the node core.

    ``keyring()`` is answered from the pushed copy (no I/O on the request path).
    ``on_invalidate``, ``on_ha`` and ``on_keyring`` are set by the owner to
    receive pushes (``on_keyring`` also when the node core goes away).
    """

    def __init__(self, path: str, connect_timeout: float = 5.0):
        self._path = path
        self._timeout = connect_timeout
        self._keyring: Keyring | None = None
        self._ha: dict = {}
        self._ha_changed = threading.Condition()
        self._ready = threading.Event()
        self.on_invalidate: Callable[[list[str]], None] | None = None
        self.on_ha: Callable[[dict], None] | None = None
        self.on_keyring: Callable[[], object] | None = None
        threading.Thread(target=self._subscription_loop, name="nodelink-subscribe", daemon=True).start()
        self._ready.wait(connect_timeout)

    # --- subscription ----------------------------------------------------------

    def _subscription_loop(self) -> None:
        import time

        while True:
            try:
                conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.connect(self._path)
                file = conn.makefile("rwb")
                file.write(b'{"op": "subscribe"}\n')
                file.flush()
                for line in file:
                    event = json.loads(line)
                    self._apply(event)
                    self._ready.set()
                    file.write((json.dumps({"ack": event["seq"]}) + "\n").encode())
                    file.flush()
            except (OSError, ValueError):
                pass
            # The node core went away: act sealed until it is back.
            self._keyring = None
            if self.on_keyring:
                self.on_keyring()
            time.sleep(0.1)

    def _apply(self, event: dict) -> None:
        if "keyring" in event:
            self._keyring = _decode_keyring(event["keyring"])
            if self.on_keyring:
                self.on_keyring()
        if event.get("ha") is not None:
            with self._ha_changed:
                self._ha = event["ha"]
                self._ha_changed.notify_all()
            if self.on_ha:
                self.on_ha(self._ha)
        if event.get("invalidate") and self.on_invalidate:
            self.on_invalidate(event["invalidate"])

    # --- calls -----------------------------------------------------------------

    def call(self, op: str, **params: Any) -> Any:
        """One request/response to the node core; domain errors re-raised here."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(30)
                conn.connect(self._path)
                file = conn.makefile("rwb")
                file.write((json.dumps({"op": op, **params}) + "\n").encode())
                file.flush()
                line = file.readline()
        except OSError:
            raise errors.StorageUnavailable("node core unreachable") from None
        if not line:
            raise errors.StorageUnavailable("node core closed the connection")
        reply = json.loads(line)
        if not reply["ok"]:
            raise _error_from(reply["error"])
        return reply["result"]

    # HAControl
    def ha(self) -> dict:
        """The HA state the node core last pushed (empty until it spoke)."""
        return self._ha

    def await_ha_change(self, seen: dict, timeout: float) -> dict:
        """The HA state once a push changed it from ``seen``, or after ``timeout``."""
        with self._ha_changed:
            self._ha_changed.wait_for(lambda: self._ha != seen, timeout)
            return self._ha

    # SealControl
    def keyring(self) -> Keyring | None:
        return self._keyring

    def status(self) -> dict:
        return self.call("status")

    def initialize(
        self,
        shares: int,
        threshold: int,
        root_token_id: str = "",
        recovery_shares: int = 0,
        recovery_threshold: int = 0,
    ) -> dict:
        return self.call(
            "initialize",
            shares=shares,
            threshold=threshold,
            root_token_id=root_token_id,
            recovery_shares=recovery_shares,
            recovery_threshold=recovery_threshold,
        )

    def unseal(self, key: str | None, reset: bool = False) -> dict:
        return self.call("unseal", key=key, reset=reset)

    def seal(self) -> None:
        self.call("seal")

    def rotate(self) -> Keyring:
        keyring = _decode_keyring(self.call("rotate"))
        if keyring is None:  # the node core answers a rotation with the new keyring, or an error
            raise errors.StorageUnavailable("node core answered a rotation without a keyring")
        return keyring

    def recovery(self, operation: str, action: str, params: dict) -> dict | None:
        result: dict | None = self.call("recovery", operation=operation, action=action, params=params)
        return result

    def parse_hcl(self, text: str) -> Any:
        """HCL parsed by the node core (``policy_parser.use_hcl_parser``): workers never load lark."""
        from strongroom.core.policy_parser import HclSyntaxError

        result = self.call("parse_hcl", text=text)
        if result.get("error") is not None:
            raise HclSyntaxError(result["error"])
        return result["document"]

    def notify(self, keys: list[str]) -> None:
        """Tell every worker of the node (and the node core) that ``keys`` changed."""
        self.call("invalidate", keys=keys)

    # HA
    def fence(self) -> tuple[str, str]:
        """The fence for this worker's writes; ReadOnly unless the node is active."""
        ha = self._ha
        if ha.get("role") != "active" or not ha.get("session"):
            raise errors.ReadOnly()
        return LOCK_KEY, ha["session"]

    def lock_lost(self) -> None:
        try:
            self.call("lock_lost")
        except errors.StrongroomError:
            pass

    def step_down(self) -> None:
        self.call("step_down")

    def ha_status(self) -> dict:
        return self.call("ha_status")


def _parse_hcl(req: dict) -> dict:
    """A policy's HCL parsed for a worker (``policy_parser.use_hcl_parser``): the
    document, or the described syntax error."""
    from strongroom.core.policy_parser import HclSyntaxError, parse_hcl

    text = req.get("text")
    if not isinstance(text, str):
        raise errors.InvalidRequest("text must be a string")
    try:
        return {"document": parse_hcl(text)}
    except HclSyntaxError as exc:
        return {"error": str(exc)}


def _unseal(seal: SealManager, ha: HAManager | None, req: dict) -> dict:
    """``sys/unseal``; the share that opens the node answers once it settled (``HAManager.settle``)."""
    was_sealed = seal.keyring() is None
    status = seal.unseal(req.get("key"), reset=bool(req.get("reset")))
    if was_sealed and ha is not None and not status.get("sealed", True):
        ha.settle(UNSEAL_SETTLE_SECONDS)
    return status


def node_core_handlers(
    seal: SealManager, ha: HAManager, publish: Callable[[dict], None]
) -> dict[str, Callable[[dict], object]]:
    """The node core's call table: the seal, the HA role, and table invalidation
    (``publish`` pushes an event to every worker, ``NodeLinkServer.publish``)."""
    from strongroom.core.ha import ACTIVE
    from strongroom.core.seal import validate_recovery_parameters, validate_seal_parameters

    def invalidate(req: dict) -> None:
        keys = req.get("keys") or []
        if not isinstance(keys, list):
            raise errors.InvalidRequest("keys must be a list")
        publish({"invalidate": [str(k) for k in keys]})

    def rotate(req: dict) -> str | None:
        if ha is not None and ha.role != ACTIVE:
            raise errors.ReadOnly()
        return _encode_keyring(seal.rotate())

    def initialize(req: dict) -> dict:
        # The message is JSON from a worker: the types are checked here, with sys/init's messages.
        if seal.recovery_seal:  # an auto seal splits the recovery key; the unseal key counts are not used
            recovery_shares, recovery_threshold = validate_recovery_parameters(
                req.get("recovery_shares"), req.get("recovery_threshold")
            )
            return seal.initialize(
                1,
                1,
                root_token_id=str(req.get("root_token_id") or ""),
                recovery_shares=recovery_shares,
                recovery_threshold=recovery_threshold,
            )
        shares, threshold = validate_seal_parameters(req.get("shares"), req.get("threshold"))
        return seal.initialize(shares, threshold, root_token_id=str(req.get("root_token_id") or ""))

    def step_down(req: dict) -> None:
        if ha is None or ha.role != ACTIVE:
            raise errors.ReadOnly()
        ha.step_down()

    def recovery(req: dict) -> dict | None:
        # Rekey and root generation keep their progress on the active node only (as in
        # Vault): a standby's worker gets ReadOnly and forwards the request there.
        if ha is not None and ha.role != ACTIVE:
            raise errors.ReadOnly()
        params = req.get("params")
        return seal.recovery(
            str(req.get("operation")), str(req.get("action")), params if isinstance(params, dict) else {}
        )

    return {
        "status": lambda req: seal.status(),
        "initialize": initialize,
        "unseal": lambda req: _unseal(seal, ha, req),
        "seal": lambda req: seal.seal(),
        "rotate": rotate,
        "invalidate": invalidate,
        "step_down": step_down,
        "recovery": recovery,
        "lock_lost": lambda req: ha.lock_lost(),
        "ha_status": lambda req: {"nodes": ha.cluster_nodes()},
        "parse_hcl": _parse_hcl,
    }
