"""``sys/key-status`` renders the active key's install time as Vault does.

https://developer.hashicorp.com/vault/api-docs/system/key-status

Vault marshals the time in Go's RFC 3339 with nanoseconds: UTC, ``Z``, the
fraction of a second with its trailing zeros trimmed (``strongroom.timefmt``).
Before the one home for time formatting, Strongroom printed Python's
``isoformat`` (``.120000Z``).
"""

from __future__ import annotations


def test_install_time_is_rfc3339_with_trailing_zeros_trimmed(unsealed):
    unsealed.clock.advance(0.12)
    assert unsealed.request("POST", "sys/rotate").status_code == 204
    status = unsealed.request("GET", "sys/key-status").json
    assert status["term"] == 2
    assert status["install_time"] == "2026-01-02T03:04:05.12Z"


def test_a_whole_second_has_no_fraction(unsealed):
    assert unsealed.request("GET", "sys/key-status").json["install_time"] == "2026-01-02T03:04:05Z"
