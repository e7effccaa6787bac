"""``retry_on_conflict``: the one loop retrying an optimistic read-modify-write."""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidRequest, StorageUnavailable, WriteConflict
from strongroom.storage.retry import MAX_PAUSE, retry_on_conflict


def conflicting(times: int, result="done"):
    """An attempt that raises ``WriteConflict`` ``times`` times, then returns ``result``;
    ``calls`` counts every run."""
    calls = []

    def attempt():
        calls.append(None)
        if len(calls) <= times:
            raise WriteConflict()
        return result

    return attempt, calls


def test_first_attempt_that_commits_is_the_only_one():
    attempt, calls = conflicting(0)
    pauses = []
    assert (
        retry_on_conflict(
            attempt, max_attempts=10, give_up_message="busy", sleep=pauses.append, jitter=lambda: 0.5, delay=0.002
        )
        == "done"
    )
    assert len(calls) == 1
    assert pauses == []


def test_runs_again_after_each_conflict_with_growing_jittered_pauses():
    attempt, calls = conflicting(3)
    pauses = []
    assert (
        retry_on_conflict(
            attempt, max_attempts=10, give_up_message="busy", sleep=pauses.append, jitter=lambda: 0.5, delay=0.002
        )
        == "done"
    )
    assert len(calls) == 4
    assert pauses == pytest.approx([0.5 * 0.002 * n for n in (1, 2, 3)])


def test_without_sleep_runs_again_at_once():
    attempt, calls = conflicting(3)
    assert retry_on_conflict(attempt, max_attempts=10, give_up_message="busy") == "done"
    assert len(calls) == 4


def test_gives_up_after_max_attempts_without_a_last_pause():
    attempt, calls = conflicting(100)
    pauses = []
    with pytest.raises(StorageUnavailable, match="too many concurrent writes; try again") as raised:
        retry_on_conflict(
            attempt,
            max_attempts=4,
            give_up_message="too many concurrent writes; try again",
            sleep=pauses.append,
            jitter=lambda: 1.0,
            delay=0.01,
        )
    assert raised.value.messages == ["too many concurrent writes; try again"]
    assert len(calls) == 4
    assert pauses == pytest.approx([0.01, 0.02, 0.03])


def test_succeeds_on_the_last_allowed_attempt():
    attempt, calls = conflicting(3)
    assert retry_on_conflict(attempt, max_attempts=4, give_up_message="busy") == "done"
    assert len(calls) == 4


def test_other_errors_propagate_at_once():
    calls = []
    pauses = []

    def attempt():
        calls.append(None)
        raise InvalidRequest("check-and-set parameter did not match")

    with pytest.raises(InvalidRequest, match="check-and-set"):
        retry_on_conflict(
            attempt, max_attempts=10, give_up_message="busy", sleep=pauses.append, jitter=lambda: 0.5, delay=0.002
        )
    assert len(calls) == 1
    assert pauses == []


class FakeTime:
    """A monotonic clock that moves only when ``sleep`` (or ``advance``) moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def retry(self, attempt, patience: float = 2.0):
        """``retry_on_conflict`` on this clock: 10 attempts, pauses of 0.01 s × n (capped), ``patience``."""
        return retry_on_conflict(
            attempt,
            max_attempts=10,
            give_up_message="busy",
            sleep=self.sleep,
            jitter=lambda: 1.0,
            delay=0.01,
            patience=patience,
            clock=self.clock,
        )


def test_keeps_trying_past_max_attempts_until_patience_has_passed():
    """A commit still in flight for longer than ten quick attempts (a loaded
    machine) no longer makes a contending writer give up: it keeps trying for
    ``patience`` seconds, and then succeeds."""
    fake = FakeTime()
    attempt, calls = conflicting(30)
    assert fake.retry(attempt) == "done"
    assert len(calls) == 31


def test_gives_up_once_both_attempts_and_patience_are_spent_with_pauses_capped():
    fake = FakeTime()
    attempt, calls = conflicting(10_000)
    with pytest.raises(StorageUnavailable, match="busy"):
        fake.retry(attempt)
    assert 2.0 <= fake.now < 2.0 + MAX_PAUSE + 1e-9
    assert max(fake.pauses) == pytest.approx(MAX_PAUSE)
    # Linear growth up to the cap: 0.01 * n for n = 1..5, then the cap.
    assert fake.pauses[:6] == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05, 0.05])
    assert len(calls) == len(fake.pauses) + 1


def test_without_sleep_patience_does_not_apply():
    """A retry with no pause would spin for the whole patience: it stops at max_attempts."""
    fake = FakeTime()
    attempt, calls = conflicting(100)
    with pytest.raises(StorageUnavailable):
        retry_on_conflict(attempt, max_attempts=4, give_up_message="busy", patience=5.0, clock=fake.clock)
    assert len(calls) == 4
