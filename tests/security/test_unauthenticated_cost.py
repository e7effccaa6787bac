"""Finding 5 (medium): unauthenticated requests had an unbounded cost.

Every random ``sys/<x>`` path and every method name became a metric label of
its own (300 token-less requests added 3,434 series), and a 1.5 MB token-less
body was written, parsed, to the audit log (17.6 MB).  Route labels now come
from the route table (unknown paths and methods share one label each), and a
request refused before authentication is audited by its metadata only.
"""

from __future__ import annotations

import random
import string
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.conftest import SecNode
from tests.security.support import send, series_count

SERIES_GROWTH_BOUND = 20
AUDIT_GROWTH_BOUND = 16 * 1024


def _word(rng: random.Random, letters: str = string.ascii_lowercase + string.digits) -> str:
    return "".join(rng.choice(letters) for _ in range(rng.randint(6, 12)))


def _series(node: SecNode) -> int:
    return series_count(node.ok("GET", "sys/metrics?format=prometheus").text)


def _settled_series(node: SecNode, timeout: float = 30.0) -> int:
    """The node's series count once its start-up series are all there: a young
    node still adds some of its own (each worker's first process sample, the
    first token usage walk, the metrics request's own route), which are no
    request's doing.  Settled when two reads 1.5 s apart (past the workers'
    1 s metric flush) agree."""
    deadline = time.monotonic() + timeout
    last = _series(node)
    while True:
        time.sleep(1.5)
        now = _series(node)
        if now == last or time.monotonic() > deadline:
            return now
        last = now


def _token_less_traffic(node: SecNode, rng: random.Random, each: int, methods: list[str]) -> None:
    """``each`` GETs of ``sys/<random>``, ``each`` of ``<random>/<random>``, and
    ``each`` requests with the given method names, all without a token."""
    for _ in range(each):
        send(node.url, "GET", f"/v1/sys/{_word(rng)}", timeout=5)
        send(node.url, "GET", f"/v1/{_word(rng)}/{_word(rng)}", timeout=5)
    for i in range(each):
        send(node.url, methods[i % len(methods)], f"/v1/{_word(rng)}/{_word(rng)}", timeout=5)


def test_token_less_requests_add_a_bounded_number_of_metric_series(sec_node):
    """Finding 5: 300 token-less requests on random paths and with 20 random
    method names add at most a small constant number of series."""
    rng = random.Random(uuid.uuid4().int)
    methods = sorted({_word(rng, string.ascii_uppercase) for _ in range(20)})
    # The labels an unknown path or method shares exist after one request of each kind.
    _token_less_traffic(sec_node, rng, 1, methods[:1])
    before = _settled_series(sec_node)
    _token_less_traffic(sec_node, rng, 100, methods)
    after = _settled_series(sec_node)
    assert after - before <= SERIES_GROWTH_BOUND, f"{after - before} new series ({before} -> {after})"


@pytest.fixture(params=["declared", "api"])
def audited(request) -> Iterator[tuple[SecNode, Path, str]]:
    """A node, the audit log one of its devices writes, and a KV v2 mount on it:
    the device declared in ``sec_node``'s configuration, or one that
    ``unsafe_node`` enabled over the API."""
    if request.param == "declared":
        yield request.getfixturevalue("sec_node"), request.getfixturevalue("sec_node").audit_log, "secret"
        return
    node: SecNode = request.getfixturevalue("unsafe_node")
    mount, device = f"kv-{uuid.uuid4().hex[:8]}", f"cost-{uuid.uuid4().hex[:8]}"
    audit_log = node.audit_dir / f"{device}.log"
    node.ok("POST", f"sys/mounts/{mount}", {"type": "kv", "options": {"version": "2"}})
    node.ok("PUT", f"sys/audit/{device}", {"type": "file", "options": {"file_path": str(audit_log)}})
    try:
        yield node, audit_log, mount
    finally:
        node.ok("DELETE", f"sys/audit/{device}")


def test_a_token_less_body_is_not_written_to_the_audit_log(audited):
    """Finding 5: a 1.5 MB token-less request added 17.6 MB to the audit log;
    now it adds less than 16 KiB."""
    node, audit_log, mount = audited
    known = f"known-{uuid.uuid4().hex[:8]}"
    node.send("GET", f"/v1/{mount}/data/{known}")
    assert audit_log.exists() and known in audit_log.read_text(), "the audit device logs nothing"
    body = b"{" + b",".join(b'"k%d":0' % i for i in range(135_000)) + b"}"
    assert len(body) >= 1_500_000
    before = audit_log.stat().st_size
    answer = node.send("PUT", f"/v1/{mount}/data/bomb", token="", body=body, timeout=60)
    assert answer.status == 403, answer
    growth = audit_log.stat().st_size - before
    assert growth < AUDIT_GROWTH_BOUND, f"the audit log grew by {growth} bytes"


# Paths whose body is parsed without a valid token: a login, and an unwrap
# whose wrapping token travels in the body.
TOKEN_LESS_BODY_PATHS = ["auth/userpass/login/someone", "sys/wrapping/unwrap"]


@pytest.fixture
def with_userpass(audited) -> Iterator[tuple[SecNode, Path]]:
    node, audit_log, _ = audited
    mount = "userpass"
    if node.send("GET", f"/v1/sys/auth/{mount}").status != 200:
        node.ok("POST", f"sys/auth/{mount}", {"type": "userpass"})
    yield node, audit_log


@pytest.mark.parametrize("path", TOKEN_LESS_BODY_PATHS)
def test_a_token_less_body_of_many_values_is_refused_before_it_reaches_the_audit_log(with_userpass, path):
    """Found after the first round: a login or a token-less unwrap is audited
    with its body, each string value HMAC'd (~76 bytes whatever its length), so
    a 792 KB body of short strings added 31 MB to the audit log and took about
    4 s of a worker's CPU.  Such bodies are now held to a few hundred values:
    refused at once, and the log grows by a bounded amount."""
    node, audit_log = with_userpass
    body = b"{" + b",".join(b'"k%d":"v"' % i for i in range(80_000)) + b"}"
    assert len(body) >= 790_000
    before = audit_log.stat().st_size
    answer = node.send("PUT", f"/v1/{path}", token="", body=body, timeout=30)
    assert answer.status == 400, answer
    assert "maximum number of tokens" in answer.text
    assert answer.elapsed < 2.0, answer.elapsed
    growth = audit_log.stat().st_size - before
    assert growth < AUDIT_GROWTH_BOUND, f"the audit log grew by {growth} bytes"


@pytest.mark.parametrize("path", TOKEN_LESS_BODY_PATHS)
def test_a_token_less_body_within_the_bound_is_audited_at_a_bounded_cost(with_userpass, path):
    """The most values a token-less body may carry, each HMAC'd in the request
    and the response entries: tens of kilobytes of log, not megabytes."""
    node, audit_log = with_userpass
    body = b"{" + b",".join(b'"k%d":"v"' % i for i in range(300)) + b"}"
    before = audit_log.stat().st_size
    answer = node.send("PUT", f"/v1/{path}", token="", body=body, timeout=30)
    assert answer.status == 400, answer
    growth = audit_log.stat().st_size - before
    assert growth < 4 * AUDIT_GROWTH_BOUND, f"the audit log grew by {growth} bytes"


def test_a_token_less_unwrap_of_many_values_is_refused_at_once_on_a_node_and_through_haproxy(target):
    """The same bound wherever the request enters: straight at a node or
    through the front door (whose read backend sends it to any node)."""
    body = b"{" + b",".join(b'"k%d":"v"' % i for i in range(80_000)) + b"}"
    answer = target.send("PUT", "/v1/sys/wrapping/unwrap", token="", body=body, timeout=30)
    assert answer.status == 400, answer
    assert "maximum number of tokens" in answer.text
    assert answer.elapsed < 2.0, answer.elapsed
