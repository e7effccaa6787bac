"""The one home of RFC 3339 rendering (``strongroom.timefmt``): Go's ``time.RFC3339Nano`` in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from strongroom.timefmt import rfc3339, rfc3339_ns, rfc3339_timestamp, to_ns


def test_trailing_zeros_of_the_fraction_are_trimmed():
    base = 1_767_323_045 * 1_000_000_000  # 2026-01-02T03:04:05Z
    assert rfc3339_ns(base) == "2026-01-02T03:04:05Z"
    assert rfc3339_ns(base + 120_000_000) == "2026-01-02T03:04:05.12Z"
    assert rfc3339_ns(base + 1) == "2026-01-02T03:04:05.000000001Z"
    assert rfc3339_ns(None) == ""


def test_every_input_shape_renders_alike():
    aware = datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)
    expected = "2026-01-02T03:04:05.12Z"
    assert rfc3339(aware) == expected
    assert rfc3339(aware.replace(tzinfo=None)) == expected  # naive is UTC
    assert rfc3339(aware.astimezone(timezone(timedelta(hours=2)))) == expected
    assert rfc3339_timestamp(aware.timestamp()) == expected
    assert rfc3339_ns(to_ns(aware)) == expected


def test_not_pythons_isoformat():
    # isoformat() keeps six digits and "+00:00"; Vault's JSON trims and writes "Z".
    moment = datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)
    assert moment.isoformat() == "2026-01-02T03:04:05.500000+00:00"
    assert rfc3339(moment) == "2026-01-02T03:04:05.5Z"
