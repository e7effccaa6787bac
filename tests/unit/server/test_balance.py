"""Even load over workers (server/balance.py): the shared table across a real
fork, and a gevent server whose pool refuses while another worker holds fewer."""

from __future__ import annotations

import os

import gevent
import gevent.event
import gevent.socket

from strongroom.server.balance import RETRY, Balance, BalancedServer, ConnectionTable


def test_least_loaded_compares_with_accepting_workers_only():
    table = ConnectionTable(slots=4)
    assert (table.free_slot(set()), table.free_slot({0})) == (0, 1)
    table.join(0, 100)
    table.join(1, 101)
    table.add(0, 1)
    assert not table.least_loaded(0) and table.least_loaded(1)
    table.add(1, 1)
    assert table.least_loaded(0) and table.least_loaded(1)  # a tie: both may accept
    table.add(1, 1)
    table.leave(0)  # stopped accepting: no longer waited for
    assert table.least_loaded(1)
    assert table.counts() == {101: 2}


def test_a_slot_is_shared_with_a_forked_worker():
    table = ConnectionTable(slots=2)
    assert table.free_slot(set()) == 0
    table.join(0, os.getpid())
    assert table.free_slot({0}) == 1  # handed out by the master before the fork
    pid = os.fork()
    if pid == 0:  # the worker: its writes reach the master's mapping
        table.join(1, os.getpid())
        table.add(1, 3)
        os._exit(0)
    os.waitpid(pid, 0)
    assert table.counts() == {os.getpid(): 0, pid: 3}
    assert table.free_slot({0, 1}) is None


def test_a_pool_refuses_while_another_worker_holds_fewer_and_looks_again():
    """Two 'workers' in one process: the same table, two slots, two servers on
    one listening socket.  Connections alternate between them."""
    table = ConnectionTable(slots=2)
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    served: dict[str, list] = {"a": [], "b": []}
    release = gevent.event.Event()
    balances = {name: Balance(table, table.free_slot(set(range(slot)))) for slot, name in enumerate(("a", "b"))}
    servers = []
    for name, balance in balances.items():
        pool = balance.pool(100)

        def handle(sock, addr, name=name):
            served[name].append(sock)
            release.wait()  # the connection stays open until the test ends

        server = BalancedServer(listener, handle, pool)
        server.max_accept = 1
        server.start()
        balance.start(os.getpid() * 10 + len(servers) + 1)
        servers.append(server)
    clients = []
    try:
        for _ in range(6):
            clients.append(gevent.socket.create_connection(listener.getsockname()))
            with gevent.Timeout(5):
                while sum(map(len, served.values())) < len(clients):
                    gevent.sleep(0.001)
            assert abs(balances["a"].connections - balances["b"].connections) <= 1
        assert balances["a"].connections == balances["b"].connections == 3
    finally:
        release.set()
        for client in clients:
            client.close()
        for server in servers:
            server.stop()
        listener.close()


def test_a_worker_behind_looks_again_without_spinning():
    """A connection waits while another worker (here one that never accepts)
    holds fewer: the server behind looks at the socket once per ``RETRY``,
    not in a loop, and takes the connection once it is the least loaded."""
    table = ConnectionTable(slots=2)
    ours, theirs = table.free_slot(set()), table.free_slot({0})
    table.join(theirs, 2)
    balance = Balance(table, ours)
    balance.start(1)
    balance.opened()  # one connection ahead of the other worker
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    server = BalancedServer(listener, lambda sock, addr: accepted.append(sock), balance.pool(10))
    looks = []
    full = server.full
    server.full = lambda: looks.append(1) or full()
    server.start()
    client = gevent.socket.create_connection(listener.getsockname())
    try:
        gevent.sleep(0.2)
        assert not accepted
        assert len(looks) <= 0.2 / RETRY + 5, f"{len(looks)} looks in 0.2 s"
        table.add(theirs, 1)  # the other worker caught up: a tie
        with gevent.Timeout(5):
            while not accepted:
                gevent.sleep(0.001)
    finally:
        client.close()
        server.stop()
        listener.close()
