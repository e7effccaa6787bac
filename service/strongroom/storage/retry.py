"""Retrying an optimistic read-modify-write after a ``WriteConflict``.

Several processes and nodes share storage but no lock, so a read-modify-write
is guarded by a check on what it read (see ``storage.Backend``): a conflicting
commit writes nothing and raises ``WriteConflict``, and the cycle must start
again from the read.  ``retry_on_conflict`` is that loop, written once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from strongroom.errors import StorageUnavailable, WriteConflict

T = TypeVar("T")

#: Attempts of one read-modify-write before giving up with ``StorageUnavailable``.
MAX_ATTEMPTS = 10
#: Upper bound of the random pause after the first conflict (seconds); grows linearly per attempt.
RETRY_DELAY = 0.002
#: How long a read-modify-write that pauses between attempts keeps trying past
#: ``MAX_ATTEMPTS`` (seconds since its first attempt).  Every conflict means
#: another writer committed, so the writers as a whole always progress; what
#: this bounds is one writer's bad luck.  Ten attempts alone last about one
#: storage commit on a loaded machine: a commit still in flight for 100 ms
#: made a contending writer give up with a 503 although nothing was wrong.
PATIENCE = 2.0
#: Upper bound of one pause (seconds), however many attempts came before.
MAX_PAUSE = 0.05


def retry_on_conflict(
    attempt: Callable[[], T],
    *,
    max_attempts: int,
    give_up_message: str,
    sleep: Callable[[float], None] | None = None,
    jitter: Callable[[], float] = random.random,
    delay: float = 0.0,
    patience: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``attempt`` until it returns without a ``WriteConflict``; its result.

    ``attempt`` must redo all its reads, its validation and its guarded commit
    each time it runs: a retry built on values read by an earlier attempt would
    commit over the very change that caused the conflict.  It runs at most
    ``max_attempts`` times, and with ``sleep`` also until ``patience`` seconds
    (by ``clock``) have passed since the first attempt, whichever is later;
    then ``StorageUnavailable(give_up_message)`` (503, which clients retry) is
    raised.  Any other error propagates at once, with no retry.

    With ``sleep``, the n-th conflict is followed by a pause of
    ``sleep(jitter() * min(delay * n, MAX_PAUSE))`` seconds (``jitter()`` in
    [0, 1)), so contending writers spread out; there is no pause after the last
    attempt.  Without it the next attempt starts at once.
    """
    started = clock()
    number = 0
    while True:
        number += 1
        try:
            return attempt()
        except WriteConflict:
            if number >= max_attempts and (sleep is None or clock() - started >= patience):
                raise StorageUnavailable(give_up_message) from None
            if sleep is not None:
                sleep(jitter() * min(delay * number, MAX_PAUSE))
