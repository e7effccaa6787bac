"""How a node's processes end together, and how a standby sees the active node's end.

A node killed with ``-9`` must be gone at once, not half alive: gunicorn dies
with its node core and each worker with gunicorn (``die_with_parent``, Linux's
parent-death signal), so every socket of the node closes in the same instant
and its clients, a standby's watch among them, see the end of their streams.

``wait_until_gone`` is that watch (``core/ha.py`` runs it on every standby
against the active node's ``api_addr``): it holds one idle connection to the
address and, each time that connection ends, connects again.  A connection
*refused* right after one ended is the evidence that no process listens there
any more: the active node's processes are gone while its host still answers,
and the standby may free the lock at once instead of waiting for the dead
node's TTL check to fail (``storage.check_timeout``).  Nothing else counts:
a timeout, an unreachable host or a reset proves nothing about the process
(a partition looks the same), and those cases keep waiting for the TTL as
before.  A false "gone" costs an unneeded failover, never a split brain:
every write of the active node is fenced with its lock session.
"""

from __future__ import annotations

import ctypes
import signal
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

#: How long a connection attempt may take (a live node accepts within milliseconds).
CONNECT_TIMEOUT = 1.0
#: How often a watch with nothing to read checks whether it should go on.
RECHECK = 0.5


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (``prctl``)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def host_and_port(address: str) -> tuple[str, int] | None:
    """The host and port of an ``api_addr`` (``https://node:8200``), None if it has none."""
    try:
        parts = urlsplit(address if "://" in address else "//" + address)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or not port:
        return None
    return parts.hostname, port


def wait_until_gone(address: str, keep_watching: Callable[[], bool]) -> bool:
    """Watch the server at ``address`` while ``keep_watching()``; True once its
    process is gone (a connection refused after the previous one ended), False
    when told to stop or when the address gives no evidence either way."""
    target = host_and_port(address)
    if target is None:
        return False
    connected_before = False
    while keep_watching():
        try:
            conn = socket.create_connection(target, timeout=CONNECT_TIMEOUT)
        except ConnectionRefusedError:
            return connected_before  # refused at the first try: no watch was ever held
        except OSError:
            return False  # unreachable or slow: the TTL check decides
        connected_before = True
        _watching(True)
        try:
            conn.settimeout(RECHECK)
            while keep_watching():
                try:
                    if not conn.recv(1024):
                        break  # the server closed it: idle timeout, or its end
                except TimeoutError:
                    continue
                except OSError:
                    break
        finally:
            conn.close()
            _watching(False)
    return False


def _watching(held: bool) -> None:
    """``strongroom_ha_leader_watched``.  (Imported when used: the node core
    imports this module before it points prometheus_client at its metrics directory.)"""
    from strongroom import metrics

    metrics.ha_leader_watched.set(1 if held else 0)
