"""The request path is decided once, before routing and the ACL (api/paths.py)."""

from __future__ import annotations

import pytest

from strongroom.api.paths import check_canonical, logical_path
from strongroom.errors import InvalidRequest


def path_info(raw_url_path: str) -> str:
    """What a WSGI server puts in PATH_INFO: percent-decoded once, one latin-1 character per byte."""
    from urllib.parse import unquote_to_bytes

    return unquote_to_bytes(raw_url_path).decode("latin-1")


@pytest.mark.parametrize(
    "url, expected",
    [
        ("/v1/secret/data/a", "secret/data/a"),
        ("/v1/secret/metadata/", "secret/metadata/"),  # a folder: one trailing slash is kept
        ("/v1/sys/policies/acl/a%20b", "sys/policies/acl/a b"),
        ("/v1/kv/%25%32%46x", "kv/%2Fx"),  # decoded once: %252F stays "%2F"
        ("/v1/kv/caf%C3%A9", "kv/café"),
        ("/v1/", ""),
    ],
)
def test_canonical_paths_pass_unchanged_but_decoded_once(url, expected):
    assert logical_path(path_info(url)) == expected


@pytest.mark.parametrize(
    "url",
    [
        "/v1//sys/mounts/prot",
        "/v1/sys/mounts//prot",
        "/v1/sys/mounts/%2Fprot",
        "/v1/sys/policies/acl/%2F%2Fdeleg",
        "/v1/sys/mounts/./prot",
        "/v1/sys/mounts/x/../prot",
        "/v1/sys/mounts/prot/..",
        "/v1/sys/mounts/prot/.",
        "/v1/kv//a",
        "/v1/kv/a//",
        "/v1/kv/a%00b",
        "/v1/kv/a%0Ab",
        "/v1/kv/a%7Fb",
        "/v1/kv/%FF",  # not UTF-8
        "/v1/kv/%ED%A0%80",  # a UTF-8-encoded surrogate is not UTF-8 either
    ],
)
def test_non_canonical_spellings_are_refused(url):
    with pytest.raises(InvalidRequest):
        logical_path(path_info(url))


def test_only_the_v1_prefix_is_served():
    with pytest.raises(InvalidRequest):
        logical_path("/v2/secret")
    with pytest.raises(InvalidRequest):
        check_canonical("a/./b")


@pytest.mark.parametrize("path", ["sys/mounts//prot", "sys/mounts/./prot", "kv/a/../b", "kv//"])
def test_a_node_answers_non_canonical_paths_with_400_and_changes_nothing(unsealed, path):
    unsealed.request("POST", "sys/mounts/prot", json={"type": "kv"})
    before = unsealed.snapshot()
    for method in ("GET", "PUT", "DELETE", "LIST"):
        kwargs = {"json": {"type": "kv"}} if method == "PUT" else {}
        result = unsealed.request(method, path, **kwargs)
        assert result.status_code == 400, (method, path, result.text)
        assert result.json["errors"] and "invalid request path" in result.json["errors"][0]
    assert unsealed.snapshot() == before
