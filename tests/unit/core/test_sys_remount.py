"""``sys/remount`` and ``sys/remount/status/<id>`` (core/sys_remount.py), and
``sys/rekey/backup`` — the answers compared by hand with OpenBao 2.7.2's."""

from __future__ import annotations

import pytest

from tests.helpers.unit_node import Node


@pytest.fixture
def node() -> Node:
    n = Node()
    n.init(1, 1)
    n.unseal()
    for path, body in (("a", {"type": "kv-v2"}), ("b", {"type": "kv"})):
        assert n.request("POST", f"sys/mounts/{path}", json=body).status_code == 204
    assert n.request("PUT", "a/data/app", json={"data": {"k": "v"}}).status_code == 200
    return n


def mounts(node: Node) -> set[str]:
    return set(node.request("GET", "sys/mounts").json["data"])


def test_a_move_keeps_the_data_and_reports_success(node):
    answer = node.request("POST", "sys/remount", json={"from": "a", "to": "moved/"})
    assert answer.status_code == 200
    migration = answer.json["migration_id"]
    assert answer.json["data"] == {"migration_id": migration} and answer.json["warnings"]
    assert "moved/" in mounts(node) and "a/" not in mounts(node)
    assert node.request("GET", "moved/data/app").json["data"]["data"] == {"k": "v"}
    assert node.request("GET", "a/data/app").status_code in (403, 404)
    status = node.request("GET", f"sys/remount/status/{migration}").json["data"]
    assert status == {
        "migration_id": migration,
        "migration_info": {"source_mount": "a/", "target_mount": "moved/", "status": "success"},
    }
    unknown = node.request("GET", "sys/remount/status/nope")
    assert (unknown.status_code, unknown.json) == (404, {"errors": []})


def test_an_auth_method_moves_within_auth(node):
    assert node.request("POST", "sys/auth/userpass", json={"type": "userpass"}).status_code == 204
    node.request("POST", "auth/userpass/users/alice", json={"password": "pw", "token_policies": "default"})
    assert node.request("POST", "sys/remount", json={"from": "auth/userpass", "to": "auth/people"}).status_code == 200
    login = node.request("POST", "auth/people/login/alice", token="", json={"password": "pw"})
    assert login.status_code == 200 and login.json["auth"]["client_token"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"from": "nope", "to": "x"}, 'no matching mount at "nope/"'),
        ({"from": "a", "to": "b"}, 'path already in use at "b/"'),
        ({"from": "a", "to": "sys/x"}, "cannot remount to destination sys/x/"),
        ({"from": "a"}, "both 'from' and 'to' path must be specified as a string"),
        ({"from": "a", "to": "auth/x"}, "cannot remount to destination auth/x/"),
        ({"from": "auth/token", "to": "auth/t2"}, 'cannot remount "auth/token/"'),
        ({"from": "cubbyhole", "to": "c2"}, 'cannot remount "cubbyhole/"'),
    ],
)
def test_refusals_as_vault_words_them_and_nothing_moves(node, body, message):
    before = node.snapshot()
    answer = node.request("POST", "sys/remount", json=body)
    assert answer.status_code == 400 and answer.json["errors"] == [message]
    assert node.snapshot() == before


def test_remount_needs_sudo(node):
    policy = 'path "sys/remount" { capabilities = ["update"] }'
    node.request("PUT", "sys/policies/acl/mover", json={"policy": policy})
    token = node.request("POST", "auth/token/create", json={"policies": ["mover"]}).json["auth"]["client_token"]
    assert node.request("POST", "sys/remount", token=token, json={"from": "a", "to": "c"}).status_code == 403


def test_rekey_backup_has_nothing_to_give(node):
    answer = node.request("GET", "sys/rekey/backup")
    assert (answer.status_code, answer.json) == (400, {"errors": ["no backed-up keys found"]})
    assert node.request("DELETE", "sys/rekey/backup").status_code == 204
    assert node.request("GET", "sys/rekey/recovery-key-backup").status_code == 400
