"""The one home of Go durations (``strongroom.durations``): request fields and the
server configuration read them with the same parser, as Vault reads both with
``parseutil.ParseDurationSecond``; the rules where the two copies differed are pinned here."""

from __future__ import annotations

import pytest

from strongroom.config import parse_duration
from strongroom.durations import (
    DURATION_OVERFLOW,
    DurationOverflow,
    format_duration,
    human_duration,
    parse_duration_second,
)
from strongroom.fields import duration_seconds


@pytest.mark.parametrize("text", ["500ms", "10s", "1h30m", "1.5h", "7d", "3600", "+5s", ".5s", "250us", "0"])
def test_config_and_fields_read_a_duration_alike(text):
    assert parse_duration(text) == pytest.approx(parse_duration_second(text) / 1e9)
    assert duration_seconds(text) == int(parse_duration_second(text) // 1_000_000_000)


@pytest.mark.parametrize("text", ["1d12h", "1.5d", "2d3h"])
def test_days_only_alone_and_whole_as_in_vault(text):
    # parseutil takes "<n>d" with an integer n and nothing else; the config's old parser took "1d12h".
    with pytest.raises(ValueError):
        duration_seconds(text)
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_config_keeps_its_own_syntax_around_vaults():
    # Blanks around the text and an HCL number's fraction are the config's documented syntax.
    assert parse_duration(" 42 ") == 42
    assert parse_duration(90.5) == 90.5
    with pytest.raises(ValueError, match="non-negative"):
        parse_duration("-5s")  # a field may be signed, a config duration never


@pytest.mark.parametrize("text", ["2562048h", "106752d", "9223372037"])
def test_overflow_is_told_apart_from_bad_syntax(text):
    with pytest.raises(DurationOverflow):
        parse_duration_second(text)
    with pytest.raises(ValueError, match="about 292 years"):
        parse_duration(text)


def test_overflow_keeps_vaults_words():
    with pytest.raises(DurationOverflow, match=DURATION_OVERFLOW):
        parse_duration_second("106752d")


@pytest.mark.parametrize(
    "seconds, go, human",
    [
        (0, "0s", "0s"),
        (60, "1m0s", "1m"),
        (3600, "1h0m0s", "1h"),
        (3601, "1h0m1s", "1h0m1s"),
        (-90, "-1m30s", "-1m30s"),
    ],
)
def test_duration_strings(seconds, go, human):
    assert format_duration(seconds) == go  # time.Duration.String
    assert human_duration(seconds) == human  # Vault's humanDuration (token warnings)
