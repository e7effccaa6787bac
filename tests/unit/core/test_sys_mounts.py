"""sys/mounts (core/sys_mounts.py): enable, list, read, tune, disable; routing to the mounted engine."""


def test_enable_list_tune_disable(unsealed):
    assert (
        unsealed.request(
            "POST", "sys/mounts/kv2", json={"type": "kv", "options": {"version": "2"}, "description": "team secrets"}
        ).status_code
        == 204
    )
    listing = unsealed.request("GET", "sys/mounts").json
    assert listing["data"]["kv2/"]["type"] == "kv"
    assert listing["kv2/"]["options"] == {"version": "2"}
    assert listing["data"]["kv2/"]["description"] == "team secrets"
    assert "sys/" in listing["data"]

    assert (
        unsealed.request(
            "POST", "sys/mounts/kv2/tune", json={"default_lease_ttl": "1h", "description": "changed"}
        ).status_code
        == 204
    )
    tune = unsealed.request("GET", "sys/mounts/kv2/tune").json["data"]
    assert tune["default_lease_ttl"] == 3600 and tune["description"] == "changed"

    assert unsealed.request("POST", "kv2/data/app", json={"data": {"k": "v"}}).status_code == 200
    assert unsealed.request("DELETE", "sys/mounts/kv2").status_code == 204
    assert "kv2/" not in unsealed.request("GET", "sys/mounts").json["data"]
    # The data went with the mount.
    assert not [k for k in unsealed.snapshot() if k.startswith("logical/")]
    assert unsealed.request("GET", "kv2/data/app").status_code == 404


def test_kv_v2_alias_and_read_mount(unsealed):
    assert unsealed.request("POST", "sys/mounts/alias", json={"type": "kv-v2"}).status_code == 204
    read = unsealed.request("GET", "sys/mounts/alias").json["data"]
    assert read["type"] == "kv" and read["options"] == {"version": "2"}


def test_conflicts_and_errors(unsealed):
    unsealed.request("POST", "sys/mounts/team", json={"type": "kv"})
    before = unsealed.snapshot()
    for path, body in (
        ("team", {"type": "kv"}),
        ("team/sub", {"type": "kv"}),
        ("sys2x", {"type": "nope"}),
        ("sys", {"type": "kv"}),
        ("x", {}),
    ):
        result = unsealed.request("POST", f"sys/mounts/{path}", json=body)
        assert result.status_code == 400, (path, result.text)
        assert result.json["errors"]
    assert unsealed.snapshot() == before


def test_unmounted_path_is_404(unsealed):
    result = unsealed.request("GET", "nowhere/foo")
    assert result.status_code == 404
    assert result.json == {"errors": ['no handler for route "nowhere/foo". route entry not found.']}


def test_auth_list_has_token(unsealed):
    assert unsealed.request("GET", "sys/auth").json["data"]["token/"]["type"] == "token"


def test_ui_mounts_lookup(unsealed):
    result = unsealed.request("GET", "sys/internal/ui/mounts/secret-none/foo")
    assert result.status_code in (400, 403)
    unsealed.request("POST", "sys/mounts/secret", json={"type": "kv-v2"})
    found = unsealed.request("GET", "sys/internal/ui/mounts/secret/foo").json["data"]
    assert found["path"] == "secret/" and found["options"]["version"] == "2"
