"""Policies through sys/policy and sys/policies/acl, enforced on requests."""

POLICY = """
path "kv/app/*" { capabilities = ["read", "list"] }
path "kv/app/writable" { capabilities = ["create", "update", "read"] }
path "kv/app/secret" { capabilities = ["deny"] }
"""


def _token(node, policies):
    result = node.request("POST", "auth/token/create", json={"policies": policies})
    assert result.status_code == 200, result.text
    return result.json["auth"]["client_token"]


def test_policy_crud_both_endpoints(unsealed):
    assert unsealed.request("PUT", "sys/policy/reader", json={"policy": POLICY}).status_code == 204
    assert unsealed.request("GET", "sys/policy/reader").json["rules"] == POLICY
    assert unsealed.request("GET", "sys/policies/acl/reader").json["data"]["policy"] == POLICY
    assert "reader" in unsealed.request("GET", "sys/policy").json["policies"]
    assert "reader" in unsealed.request("LIST", "sys/policies/acl").json["data"]["keys"]
    assert unsealed.request("DELETE", "sys/policies/acl/reader").status_code == 204
    assert unsealed.request("GET", "sys/policies/acl/reader").status_code == 404


def test_policy_names_are_trimmed_and_lower_cased_as_vault_does(unsealed):
    assert unsealed.request("PUT", "sys/policy/%20Reader%20", json={"policy": POLICY}).status_code == 204
    assert unsealed.request("GET", "sys/policy/reader").json["rules"] == POLICY
    assert "reader" in unsealed.request("GET", "sys/policy").json["policies"]
    assert unsealed.request("DELETE", "sys/policy/%20READER").status_code == 204
    assert unsealed.request("GET", "sys/policy/reader").status_code == 404


def test_root_and_default_are_protected(unsealed):
    assert unsealed.request("PUT", "sys/policy/root", json={"policy": POLICY}).status_code == 400
    assert unsealed.request("DELETE", "sys/policy/default").status_code == 400


def test_bad_policy_is_400_and_not_stored(unsealed):
    before = unsealed.snapshot()
    result = unsealed.request("PUT", "sys/policy/bad", json={"policy": 'path "x" { capabilities = ["fly"] }'})
    assert result.status_code == 400 and result.json["errors"]
    assert unsealed.snapshot() == before


def test_policy_enforced_with_vault_403_body(unsealed):
    unsealed.request("POST", "sys/mounts/kv", json={"type": "kv"})
    unsealed.request("PUT", "kv/app/readable", json={"v": "1"})
    unsealed.request("PUT", "kv/app/secret", json={"v": "2"})
    unsealed.request("PUT", "sys/policy/reader", json={"policy": POLICY})
    token = _token(unsealed, ["reader"])

    assert unsealed.request("GET", "kv/app/readable", token=token).json["data"] == {"v": "1"}
    denied = unsealed.request("GET", "kv/app/secret", token=token)
    assert denied.status_code == 403 and denied.json == {"errors": ["permission denied"]}
    assert unsealed.request("PUT", "kv/app/readable", token=token, json={"v": "x"}).status_code == 403
    assert unsealed.request("PUT", "kv/app/writable", token=token, json={"v": "w"}).status_code == 204
    assert unsealed.request("GET", "sys/mounts", token=token).status_code == 403
    assert unsealed.request("PUT", "sys/seal", token=token).status_code == 403
    caps = unsealed.request("POST", "sys/capabilities-self", token=token, json={"paths": ["kv/app/secret"]})
    assert caps.json["capabilities"] == ["deny"]


def test_missing_and_bogus_tokens(unsealed):
    for token in ("", "hvs.bogus"):
        result = unsealed.request("GET", "sys/mounts", token=token)
        assert result.status_code == 403 and result.json == {"errors": ["permission denied"]}
    bearer = unsealed.client.simulate_get("/v1/sys/mounts", headers={"Authorization": f"Bearer {unsealed.root_token}"})
    assert bearer.status_code == 200


def test_policy_change_applies_immediately(unsealed):
    unsealed.request("POST", "sys/mounts/kv", json={"type": "kv"})
    unsealed.request("PUT", "kv/app/readable", json={"v": "1"})
    unsealed.request("PUT", "sys/policy/reader", json={"policy": POLICY})
    token = _token(unsealed, ["reader"])
    assert unsealed.request("GET", "kv/app/readable", token=token).status_code == 200
    unsealed.request("PUT", "sys/policy/reader", json={"policy": 'path "other/*" { capabilities = ["read"] }'})
    assert unsealed.request("GET", "kv/app/readable", token=token).status_code == 403


ONE_OF = """
path "kv/once" { capabilities = ["create", "read"] }
path "kv/existing" { capabilities = ["update", "read"] }
path "kv/both" { capabilities = ["create", "update", "read"] }
"""


def test_create_and_update_capabilities_follow_whether_the_target_exists(unsealed):
    unsealed.request("POST", "sys/mounts/kv", json={"type": "kv"})
    unsealed.request("PUT", "sys/policy/one-of", json={"policy": ONE_OF})
    token = _token(unsealed, ["one-of"])

    assert unsealed.request("PUT", "kv/once", token=token, json={"v": "1"}).status_code == 204
    assert unsealed.request("PUT", "kv/once", token=token, json={"v": "2"}).status_code == 403
    assert unsealed.request("PUT", "kv/existing", token=token, json={"v": "1"}).status_code == 403
    unsealed.request("PUT", "kv/existing", json={"v": "root"})
    assert unsealed.request("PUT", "kv/existing", token=token, json={"v": "2"}).status_code == 204
    assert unsealed.request("PUT", "kv/both", token=token, json={"v": "1"}).status_code == 204
    assert unsealed.request("PUT", "kv/both", token=token, json={"v": "2"}).status_code == 204
    assert unsealed.request("GET", "kv/once", token=token).json["data"] == {"v": "1"}
    assert unsealed.request("GET", "kv/existing", token=token).json["data"] == {"v": "2"}
