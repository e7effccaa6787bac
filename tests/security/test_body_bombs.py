"""Finding 3 (high): a token-less request stalled a node by the cost of its JSON body.

A 23 MiB body with 2.3 million keys was parsed before authorisation, in a
gevent worker: 12-24 s of CPU while ``sys/seal-status`` went unanswered.  Now
the token is looked up first (no token: 403 without parsing), and a body is
parsed within Vault's listener bounds (``max_json_depth`` 300,
``max_json_string_value_length`` 1 MiB, ``max_json_object_entry_count`` and
``max_json_array_element_count`` 10,000): an over-limit body gets a 400 quickly
while the node keeps answering everyone else.
"""

from __future__ import annotations

import time

import pytest

from tests.helpers.procs import wait_until
from tests.security.support import Answer, Prober, send_timed

KEYS = 1_600_000  # '"k1234567":0,' is 13 bytes: about 20 MiB
PROBE_BUDGET = 0.100  # seconds, for sys/seal-status on a fresh connection
ANSWER_BUDGET = 1.0  # seconds after the last byte of the body was sent


@pytest.fixture(scope="module")
def many_keys() -> bytes:
    """``{"k0":0,"k1":0,...}``: about 20 MiB, 1.6 million keys."""
    return b"{" + b",".join(b'"k%d":0' % i for i in range(KEYS)) + b"}"


@pytest.fixture
def responsive(sec_node):
    """After the test, wait until the node answers promptly again, so that a
    stalled worker (today's code) does not fail the tests that follow."""
    yield
    wait_until(
        lambda: sec_node.send("GET", "/v1/sys/seal-status", timeout=2).elapsed < 0.5,
        120,
        "the node to answer promptly again",
        interval=0.2,
    )


def _bomb(url: str, path: str, body: bytes, token: str | None) -> tuple[Answer, float]:
    """PUT ``body``; the answer and the seconds between the last byte sent (or
    the answer, if it came first) and the answer."""
    return send_timed(url, "PUT", path, token=token, body=body, timeout=60)


def _problems(answer: Answer, status: int, after_body: float, prober: Prober) -> list[str]:
    """Everything wrong with a bomb's outcome, so that a failure shows all of it."""
    problems = []
    if answer.status != status:
        problems.append(f"status {answer.status}, not {status}: {answer.text[:200]}")
    if after_body > ANSWER_BUDGET:
        problems.append(f"answered {after_body:.2f}s after the body was sent")
    if prober.failures:
        problems.append(f"sys/seal-status failed: {prober.failures[:3]}")
    if prober.worst >= PROBE_BUDGET:
        problems.append(f"sys/seal-status took up to {prober.worst * 1000:.0f} ms ({len(prober.latencies)} probes)")
    return problems


def _stored(sec_node, path: str) -> bool:
    return sec_node.send("GET", f"/v1/secret/data/{path}").status != 404


def test_a_token_less_body_bomb_is_refused_without_stalling_the_node(sec_node, many_keys, responsive, unique):
    """Finding 3: a 20 MiB body of 1.6 million keys and no token gets 403 within
    1 s, and ``sys/seal-status`` answers within 100 ms throughout."""
    path = unique("bomb")
    with Prober(sec_node.url) as prober:
        answer, after_body = _bomb(sec_node.url, f"/v1/secret/data/{path}", many_keys, token=None)
        time.sleep(0.1)  # keep probing just after the answer, when a parse would still run
    problems = _problems(answer, 403, after_body, prober)
    assert not problems, "; ".join(problems)
    assert not _stored(sec_node, path)


def test_a_body_bomb_with_a_token_is_refused_by_the_entry_count_bound(sec_node, many_keys, responsive, unique):
    """Finding 3: the same body with a valid token gets 400 (over
    ``max_json_object_entry_count``) within 1 s, ``sys/seal-status`` within 100 ms."""
    path = unique("bomb")
    with Prober(sec_node.url) as prober:
        answer, after_body = _bomb(sec_node.url, f"/v1/secret/data/{path}", many_keys, token=sec_node.root_token)
        time.sleep(0.1)
    problems = _problems(answer, 400, after_body, prober)
    assert not problems, "; ".join(problems)
    assert answer.errors()
    assert not _stored(sec_node, path)


def _nested(depth: int) -> str:
    return '{"data": {"a": ' + "[" * depth + "]" * depth + "}}"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_nested(100_000), id="nesting-100000-deep"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="bare-nesting-100000-deep"),
        pytest.param(_nested(600), id="nesting-600-deep"),
        pytest.param('{"data": {"a": "' + "x" * (2 * 1024 * 1024) + '"}}', id="string-2MiB"),
        pytest.param('{"data": {"a": [' + ",".join(["0"] * 20_000) + "]}}", id="array-20000"),
    ],
)
def test_an_over_limit_body_is_refused_with_400(sec_node, responsive, unique, body):
    """Finding 3 (and 4: 100,000-deep nesting gave 500 RecursionError, 500-900
    deep 500 "failed to log request to any audit device"): depth over 300, a
    string over 1 MiB, an array over 10,000 elements are a 400, nothing stored."""
    path = unique("bounded")
    before = sec_node.log().count("Traceback")
    answer = sec_node.send("PUT", f"/v1/secret/data/{path}", body=body, timeout=30)
    assert answer.status == 400, answer
    assert answer.errors()
    assert not _stored(sec_node, path)
    assert sec_node.log().count("Traceback") == before, sec_node.server.log_tail()
