"""Response wrapping on an in-memory node (core/wrapping.py).

Shapes compared by hand with OpenBao 2.7.2 (``bao server -dev``): a wrapped
answer has ``data``/``auth`` null, ``request_id`` "", and ``wrap_info`` with
``wrapped_accessor`` only when a token was wrapped; a spent or unknown token is
"wrapping token is not valid or does not exist"; ``sys/wrapping/wrap`` without a
TTL is "endpoint requires response wrapping to be used".  The CLI round trip
(``bao kv get -wrap-ttl`` then ``bao unwrap``) is in tests/security/test_wrapping.py.
"""

from __future__ import annotations

import threading

import pytest

from strongroom.core.wrapping import RESPONSES_PREFIX, wrap_ttl_seconds
from strongroom.errors import InvalidRequest
from tests.helpers.unit_node import Node

WRAP = {"X-Vault-Wrap-TTL": "60s"}
INVALID = "wrapping token is not valid or does not exist"


@pytest.fixture
def node() -> Node:
    n = Node()
    n.init(1, 1)
    n.unseal()
    assert n.request("POST", "sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}}).status_code == 204
    assert n.request("PUT", "secret/data/app", json={"data": {"password": "hunter2"}}).status_code == 200
    return n


def wrapped_read(node: Node, ttl: str = "60s") -> dict:
    answer = node.request("GET", "secret/data/app", headers={"X-Vault-Wrap-TTL": ttl})
    assert answer.status_code == 200, answer.text
    assert "hunter2" not in answer.text
    return answer.json


def test_a_wrapped_read_answers_only_the_wrap_info(node):
    body = wrapped_read(node)
    assert body["data"] is None and body["auth"] is None and body["request_id"] == ""
    info = body["wrap_info"]
    assert set(info) == {"token", "accessor", "ttl", "creation_time", "creation_path"}
    assert info["ttl"] == 60 and info["creation_path"] == "secret/data/app" and info["token"].startswith("hvs.")
    # Stored through the barrier: the secret is nowhere in storage in plain text.
    assert not any(b"hunter2" in value for value in node.snapshot().values())


def test_unwrap_as_the_wrapping_token_itself_then_never_again(node):
    token = wrapped_read(node)["wrap_info"]["token"]
    first = node.request("POST", "sys/wrapping/unwrap", token=token)
    assert first.status_code == 200
    assert first.json["data"]["data"] == {"password": "hunter2"} and first.json["wrap_info"] is None
    again = node.request("POST", "sys/wrapping/unwrap", token=token)
    # The token itself is spent (single use): judged as a wrapping token first, as OpenBao does.
    assert (again.status_code, again.json["errors"]) == (400, [INVALID])
    assert node.request("POST", "sys/wrapping/unwrap", json={"token": token}).json["errors"] == [INVALID]
    assert not [k for k in node.snapshot() if RESPONSES_PREFIX in k]  # the stored response is gone
    assert node.request("POST", "sys/wrapping/lookup", token="", json={"token": token}).json["errors"] == [INVALID]


def test_unwrap_by_another_token_and_lookup_without_one(node):
    token = wrapped_read(node, "5m")["wrap_info"]["token"]
    looked = node.request("POST", "sys/wrapping/lookup", token="", json={"token": token})
    assert looked.status_code == 200
    assert looked.json["data"]["creation_path"] == "secret/data/app" and looked.json["data"]["creation_ttl"] == 300
    assert node.request("POST", "sys/wrapping/unwrap", json={"token": token}).json["data"]["data"]["password"] == (
        "hunter2"
    )
    assert node.request("POST", "sys/wrapping/unwrap", json={"token": token}).status_code == 400


def test_only_one_of_two_racing_unwraps_gets_the_secret(node):
    token = wrapped_read(node)["wrap_info"]["token"]
    results: list[int] = []
    barrier = threading.Barrier(4)

    def unwrap() -> None:
        barrier.wait()
        results.append(node.request("POST", "sys/wrapping/unwrap", json={"token": token}).status_code)

    threads = [threading.Thread(target=unwrap) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 400, 400, 400]


def test_a_wrapping_token_can_do_nothing_but_unwrap(node):
    token = wrapped_read(node)["wrap_info"]["token"]
    assert node.request("GET", "secret/data/app", token=token).status_code == 403
    assert node.request("GET", "auth/token/lookup-self", token=token).status_code == 403
    # A regular token is not a wrapping token, whoever presents it.
    other = node.request("POST", "auth/token/create", json={"policies": ["default"]}).json["auth"]["client_token"]
    assert node.request("POST", "sys/wrapping/unwrap", json={"token": other}).json["errors"] == [INVALID]
    assert node.request("POST", "sys/wrapping/unwrap", token=other).json["errors"] == [INVALID]


def test_a_wrapped_token_create_and_its_unwrap(node):
    created = node.request("POST", "auth/token/create", json={"policies": ["default"]}, headers=WRAP)
    assert created.status_code == 200 and created.json["auth"] is None
    info = created.json["wrap_info"]
    assert info["creation_path"] == "auth/token/create" and info["wrapped_accessor"]
    auth = node.request("POST", "sys/wrapping/unwrap", token=info["token"]).json["auth"]
    assert auth["accessor"] == info["wrapped_accessor"]
    lookup = node.request("GET", "auth/token/lookup-self", token=auth["client_token"])
    assert lookup.status_code == 200 and lookup.json["data"]["policies"] == ["default"]


def test_wrap_rewrap_and_their_refusals(node):
    plain = node.request("POST", "sys/wrapping/wrap", json={"a": "b"})
    assert plain.status_code == 400 and plain.json["errors"] == ["endpoint requires response wrapping to be used"]
    wrapped = node.request("POST", "sys/wrapping/wrap", json={"a": "b"}, headers=WRAP).json["wrap_info"]
    assert wrapped["creation_path"] == "sys/wrapping/wrap"
    rewrapped = node.request("POST", "sys/wrapping/rewrap", json={"token": wrapped["token"]})
    assert rewrapped.status_code == 200
    new = rewrapped.json["wrap_info"]
    assert new["token"] != wrapped["token"] and new["creation_path"] == "sys/wrapping/wrap" and new["ttl"] == 60
    assert node.request("POST", "sys/wrapping/unwrap", json={"token": wrapped["token"]}).status_code == 400
    assert node.request("POST", "sys/wrapping/unwrap", json={"token": new["token"]}).json["data"] == {"a": "b"}


@pytest.mark.parametrize(
    ("header", "seconds"), [("300", 300), ("5m", 300), ("1.5m", 90), ("1d", 86400), (" 60s ", 60), ("", 0)]
)
def test_the_wrap_ttl_header_is_read_as_vault_does(header, seconds):
    # Vault parses X-Vault-Wrap-TTL with parseutil.ParseDurationSecond (a bare number is
    # seconds, "1d" a day); the audit entry's wrap_ttl is read by the same function.
    assert wrap_ttl_seconds(header) == seconds


@pytest.mark.parametrize("header", ["junk", "5x", "-5s"])
def test_a_wrap_ttl_header_vault_refuses_is_an_invalid_request(header):
    with pytest.raises(InvalidRequest):
        wrap_ttl_seconds(header)


@pytest.mark.parametrize(
    ("header", "message"),
    [("abc", "error parsing X-Vault-Wrap-TTL header"), ("-5s", "requested wrap ttl cannot be negative")],
)
def test_a_bad_wrap_ttl_runs_nothing(node, header, message):
    before = node.snapshot()
    answer = node.request("PUT", "secret/data/app", json={"data": {"x": "y"}}, headers={"X-Vault-Wrap-TTL": header})
    assert answer.status_code == 400 and message in answer.json["errors"][0]
    assert node.snapshot() == before


def test_policy_wrapping_ttl_bounds_are_enforced(node):
    policy = 'path "secret/data/app" { capabilities = ["read"]  min_wrapping_ttl = "1m" max_wrapping_ttl = "10m" }'
    node.request("PUT", "sys/policies/acl/wrapped-only", json={"policy": policy})
    token = node.request("POST", "auth/token/create", json={"policies": ["wrapped-only"]}).json["auth"]["client_token"]
    assert node.request("GET", "secret/data/app", token=token).status_code == 403  # must wrap
    assert node.request("GET", "secret/data/app", token=token, headers={"X-Vault-Wrap-TTL": "30s"}).status_code == 403
    assert node.request("GET", "secret/data/app", token=token, headers={"X-Vault-Wrap-TTL": "1h"}).status_code == 403
    ok = node.request("GET", "secret/data/app", token=token, headers={"X-Vault-Wrap-TTL": "5m"})
    assert ok.status_code == 200 and ok.json["wrap_info"]["ttl"] == 300


def test_an_expired_wrapping_token_unwraps_nothing_and_tidy_removes_its_response(node):
    token = wrapped_read(node)["wrap_info"]["token"]
    stored = [k for k in node.snapshot() if RESPONSES_PREFIX in k]
    assert len(stored) == 1
    node.clock.advance(61)
    assert node.request("POST", "sys/wrapping/unwrap", json={"token": token}).json["errors"] == [INVALID]
    assert node.core.wrapping.tidy_responses() == 1
    assert not [k for k in node.snapshot() if RESPONSES_PREFIX in k]


def test_a_client_token_that_is_not_valid_is_judged_as_a_wrapping_token_first(node):
    """OpenBao 2.7.2: unwrap or rewrap with an unknown X-Vault-Token and no body token
    is a 400 "not valid"; with a spent body token too; with a live body token it is
    the usual 403 (the caller must still be authenticated)."""
    spent = wrapped_read(node)["wrap_info"]["token"]
    assert node.request("POST", "sys/wrapping/unwrap", token=spent).status_code == 200
    live = wrapped_read(node)["wrap_info"]["token"]
    for path in ("sys/wrapping/unwrap", "sys/wrapping/rewrap"):
        bogus = node.request("POST", path, token="bogus")
        assert (bogus.status_code, bogus.json["errors"]) == (400, [INVALID]), path
        named_spent = node.request("POST", path, token="bogus", json={"token": spent})
        assert (named_spent.status_code, named_spent.json["errors"]) == (400, [INVALID]), path
        named_live = node.request("POST", path, token="bogus", json={"token": live})
        assert (named_live.status_code, named_live.json["errors"]) == (403, ["permission denied"]), path
    # The live one was never spent by those refusals.
    assert node.request("POST", "sys/wrapping/unwrap", token=live).json["data"]["data"] == {"password": "hunter2"}
