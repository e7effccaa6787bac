"""On a performance standby the engine runs over a ``ReadOnlyView``: every transit
operation that only uses a key must succeed there (served locally), and every
one that changes a key must raise ``ReadOnly`` (forwarded to the active node)."""

from __future__ import annotations

import pytest

from strongroom.engines import create_engine
from strongroom.errors import ReadOnly
from strongroom.storage import ReadOnlyView
from tests.unit.engines.transit.transit_support import b64, call, ok

HI = b64(b"hi")


@pytest.fixture
def standby(transit, backend, clock):
    """A second engine over the same storage, read-only, after keys were made on the active one."""
    ok(transit, "update", "keys/sym", {"exportable": True, "allow_plaintext_backup": True})
    ok(transit, "update", "keys/ed", {"type": "ed25519"})
    return create_engine("transit", {}, ReadOnlyView(backend), clock)


def test_read_only_operations_are_served_locally(transit, standby):
    ciphertext = ok(standby, "update", "encrypt/sym", {"plaintext": HI})["ciphertext"]
    assert ok(standby, "update", "decrypt/sym", {"ciphertext": ciphertext}) == {"plaintext": HI}
    assert ok(standby, "update", "rewrap/sym", {"ciphertext": ciphertext})["key_version"] == 1
    ok(standby, "update", "datakey/plaintext/sym")
    mac = ok(standby, "update", "hmac/sym", {"input": HI})["hmac"]
    assert ok(standby, "update", "verify/sym", {"input": HI, "hmac": mac}) == {"valid": True}
    signature = ok(standby, "update", "sign/ed", {"input": HI})["signature"]
    assert ok(standby, "update", "verify/ed", {"input": HI, "signature": signature}) == {"valid": True}
    ok(standby, "update", "hash", {"input": HI})
    ok(standby, "update", "random/8")
    ok(standby, "read", "keys/sym")
    ok(standby, "list", "keys")
    ok(standby, "read", "export/encryption-key/sym")
    ok(standby, "read", "backup/sym")


@pytest.mark.parametrize(
    ("operation", "path", "body"),
    [
        ("update", "keys/new", {}),
        ("update", "encrypt/new", {"plaintext": HI}),
        ("update", "keys/sym/rotate", {}),
        ("update", "keys/sym/config", {"deletion_allowed": True}),
    ],
)
def test_writes_raise_read_only(standby, operation, path, body):
    with pytest.raises(ReadOnly):
        call(standby, operation, path, body)


def test_rotation_on_the_active_is_seen_by_the_next_standby_request(transit, standby):
    ok(transit, "update", "keys/sym/rotate")
    assert ok(standby, "update", "encrypt/sym", {"plaintext": HI})["key_version"] == 2
