"""ACL policies: parsing and evaluation as Vault does it.

Examples come from https://developer.hashicorp.com/vault/docs/concepts/policies
and the priority rules of Vault's ``vault/acl.go``.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.core.policy import ACL, DEFAULT_POLICY_TEXT, PathRule, Policy, glob_match, parse_policy, validate_name
from strongroom.errors import InvalidRequest, PermissionDenied


def acl(*texts: str) -> ACL:
    return ACL([parse_policy(f"p{i}", text) for i, text in enumerate(texts)])


def allowed(a: ACL, path: str, operation: str, data: dict | None = None, **kwargs) -> bool:
    try:
        a.check(path, operation, data or {}, **kwargs)
    except PermissionDenied as exc:
        assert str(exc) == "permission denied"
        return False
    return True


# --- parsing -------------------------------------------------------------------

DOCS_POLICY = """
# Dev servers have version 2 of KV secrets engine mounted by default, so will
# need these paths to grant permissions:
path "secret/data/*" {
  capabilities = ["create", "update"]
}

path "secret/data/foo" {
  capabilities = ["read"]
}
"""


def test_parse_path_blocks_in_order():
    policy = parse_policy("My-Policy", DOCS_POLICY)
    assert policy.name == "my-policy"
    assert policy.raw == DOCS_POLICY
    assert policy.rules == (
        PathRule(path="secret/data/*", capabilities=frozenset({"create", "update"}), is_prefix=True),
        PathRule(path="secret/data/foo", capabilities=frozenset({"read"})),
    )


def test_parse_flags_and_fine_grained_keys():
    policy = parse_policy(
        "p",
        """
path "/secret/+/teamb/*" {
  capabilities = ["read", "patch", "subscribe"]
  allowed_parameters = {
    "Bar" = ["zip", "zap"]
    "*"   = []
  }
  denied_parameters = {
    "secret" = []
  }
  required_parameters = ["bar"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = 90
  comment = "free text"
}
""",
    )
    (rule,) = policy.rules
    assert rule.path == "secret/+/teamb/*"  # one leading slash dropped, as Vault does
    assert rule.is_prefix and rule.has_segment_wildcard
    assert rule.capabilities == {"read", "patch", "subscribe"}
    assert dict(rule.allowed_parameters) == {"bar": ("zip", "zap"), "*": ()}
    assert dict(rule.denied_parameters) == {"secret": ()}
    assert rule.required_parameters == ("bar",)
    assert (rule.min_wrapping_ttl, rule.max_wrapping_ttl) == (1, 90)


@pytest.mark.parametrize(
    "value, seconds",
    [
        ('"90"', 90),
        ("90", 90),
        ('"1h30m"', 5400),
        ('"1.5s"', 1.5),
        ('"2d"', 172800),
        ('"500ms"', 0.5),
    ],
)
def test_wrapping_ttl_forms(value, seconds):
    (rule,) = parse_policy("p", f'path "a" {{\n capabilities = ["read"]\n max_wrapping_ttl = {value}\n}}').rules
    assert rule.max_wrapping_ttl == pytest.approx(seconds)


def test_block_form_of_allowed_parameters():
    text = 'path "a" {\n capabilities = ["update"]\n allowed_parameters {\n  bar = []\n }\n}'
    (rule,) = parse_policy("p", text).rules
    assert dict(rule.allowed_parameters) == {"bar": ()}


@pytest.mark.parametrize(
    "legacy, expected",
    [
        ("read", {"read", "list"}),
        ("write", {"create", "read", "update", "delete", "list"}),
        ("deny", {"deny"}),
        ("sudo", {"create", "read", "update", "delete", "list", "sudo"}),
    ],
)
def test_legacy_policy_shorthand(legacy, expected):
    (rule,) = parse_policy("p", f'path "secret/*" {{ policy = "{legacy}" }}').rules
    assert rule.capabilities == expected


def test_legacy_shorthand_adds_to_capabilities_and_deny_replaces_them():
    text = (
        'path "a" {\n capabilities = ["patch"]\n policy = "read"\n}\n'
        'path "b" {\n capabilities = ["read"]\n policy = "deny"\n}'
    )
    a, b = parse_policy("p", text).rules
    assert a.capabilities == {"patch", "read", "list"}
    assert b.capabilities == {"deny"}


def test_deny_keeps_only_deny():
    (rule,) = parse_policy(
        "p", 'path "a" {\n capabilities = ["read", "deny", "update"]\n allowed_parameters = { "x" = [] }\n}'
    ).rules
    assert rule.capabilities == {"deny"} and rule.allowed_parameters is None


def test_json_policy_equals_hcl():
    hcl = parse_policy(
        "p",
        'path "secret/*" {\n'
        ' capabilities = ["create", "read", "update", "patch", "delete", "list"]\n}\n'
        'path "secret/super-secret" {\n capabilities = ["deny"]\n}\n'
        'path "secret/restricted" {\n capabilities = ["create"]\n'
        ' allowed_parameters = {\n  "foo" = []\n  "bar" = ["zip", "zap"]\n }\n}\n',
    )
    json_text = """{
  "path": {
    "secret/*": {"capabilities": ["create", "read", "update", "patch", "delete", "list"]},
    "secret/super-secret": {"capabilities": ["deny"]},
    "secret/restricted": {"capabilities": ["create"], "allowed_parameters": {"foo": [], "bar": ["zip", "zap"]}}
  }
}"""
    assert parse_policy("p", json_text).rules == hcl.rules
    listed = '{"path": [{"secret/*": {"policy": "read"}}, {"secret/*": {"capabilities": ["update"]}}]}'
    assert [r.capabilities for r in parse_policy("p", listed).rules] == [{"read", "list"}, {"update"}]


def test_empty_policy_and_top_level_name():
    assert parse_policy("p", "").rules == ()
    assert parse_policy("p", '# nothing\nname = "ignored"\n').rules == ()


def test_glob_only_at_the_end_is_literal_elsewhere():
    (rule,) = parse_policy("p", 'path "secret/*/foo" { capabilities = ["read"] }').rules
    assert not rule.is_prefix and not rule.has_segment_wildcard
    a = ACL([parse_policy("p", 'path "secret/*/foo" { capabilities = ["read"] }')])
    assert a.capabilities("secret/*/foo") == ["read"]
    assert a.capabilities("secret/x/foo") == ["deny"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('path "x" { capabilities = ["fly"] }', 'failed to parse policy: path "x": invalid capability "fly"'),
        ('path "x" { capabilities = ["Read"] }', 'failed to parse policy: path "x": invalid capability "Read"'),
        ('path "x" { policy = "admin" }', 'failed to parse policy: path "x": invalid policy "admin"'),
        ('path "x" { capabilities = ["read"]\n foo = 1 }', None),
        ('path "x" {\n capabilities = ["read"]\n foo = 1\n}', 'failed to parse policy: path "x": invalid key "foo"'),
        ('pathz "x" {}', 'failed to parse policy: invalid key "pathz"'),
        ('path = "x"', "failed to parse policy: path: expected a block, not a value"),
        (
            'path "x" { capabilities = "read" }',
            'failed to parse policy: path "x": capabilities: expected a list of strings',
        ),
        (
            'path "secret/+*" {}',
            "failed to parse policy: path \"secret/+*\": invalid use of wildcards ('+*' is forbidden)",
        ),
        (
            'path "x" {\n max_wrapping_ttl = "soon"\n}',
            'failed to parse policy: error parsing max_wrapping_ttl: time: invalid duration "soon"',
        ),
        ('path "x" { policy = ["read"] }', 'failed to parse policy: path "x": invalid policy "[\'read\']"'),
        (
            'path "x" {\n min_wrapping_ttl = 60\n max_wrapping_ttl = 30\n}',
            "failed to parse policy: max_wrapping_ttl cannot be less than min_wrapping_ttl",
        ),
        (
            'path "x" {\n allowed_parameters = { "a*" = [] }\n}',
            'failed to parse policy: path "x": allowed_parameters: '
            'parameter key "a*" cannot contain non-tail wildcards',
        ),
        ('path "x" {\n denied_parameters = { "a" = "b" }\n}', None),
        (
            'path "id/{{identity.entity.id" {}',
            "failed to parse policy: failed to validate policy templating: unbalanced templating characters",
        ),
        ('path "secret/*" {', "failed to parse policy: At 1:18: unexpected end of input"),
        ("{not json", None),
        ('["path"]', None),
    ],
)
def test_invalid_policies(text, message):
    with pytest.raises(InvalidRequest) as info:
        parse_policy("bad", text)
    assert str(info.value).startswith("failed to parse policy: ")
    if message is not None:
        assert str(info.value) == message


def test_parameter_key_wildcards_vault_accepts():
    (rule,) = parse_policy("p", 'path "x" {\n allowed_parameters = { "*" = [], "/data/*" = [] }\n}').rules
    assert set(rule.allowed_parameters) == {"*", "/data/*"}


# --- names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, operation, message",
    [
        ("root", "update", 'cannot update "root" policy'),
        ("ROOT ", "create", 'cannot update "root" policy'),
        ("root", "delete", 'cannot delete "root" policy'),
        ("response-wrapping", "update", 'cannot update "response-wrapping" policy'),
        ("default", "delete", "cannot delete default policy"),
        ("", "update", "policy name must be provided"),
    ],
)
def test_protected_names(name, operation, message):
    with pytest.raises(InvalidRequest) as info:
        validate_name(name, operation)
    assert str(info.value) == message


def test_names_are_normalised():
    assert validate_name("  Default ", "update") == "default"
    assert validate_name("My-Policy", "delete") == "my-policy"
    assert validate_name("root", "read") == "root"


# --- matching (docs examples) ----------------------------------------------------

DOCS_MATCHING = """
path "secret/foo" {
  capabilities = ["read"]
}
path "secret/bar/*" {
  capabilities = ["read"]
}
path "secret/zip-*" {
  capabilities = ["read"]
}
path "secret/+/teamb" {
  capabilities = ["read"]
}
path "secret/+/+/teamb" {
  capabilities = ["read"]
}
"""


@pytest.mark.parametrize(
    "path, readable",
    [
        ("secret/foo", True),
        ("secret/food", False),
        ("secret/foo/bar", False),
        ("secret/bar/zip", True),
        ("secret/bar/zip/zap", True),
        ("secret/bars/zip", False),
        ("secret/zip-zap", True),
        ("secret/zip-zap/zong", True),
        ("secret/zip/zap", False),
        ("secret/foo/teamb", True),
        ("secret/bar/teamb", True),
        ("secret/foo/bar/teamb", True),
        ("secret/teamb", False),
        ("secret/a/b/c/teamb", False),
        ("/secret/foo", True),
    ],
)
def test_docs_path_examples(path, readable):
    assert allowed(acl(DOCS_MATCHING), path, "read") is readable


def test_exact_match_wins_over_glob():
    a = acl('path "secret/*" { capabilities = ["read", "update"] }', 'path "secret/foo" { capabilities = ["read"] }')
    assert a.capabilities("secret/foo") == ["read"]
    assert a.capabilities("secret/foo/bar") == ["read", "update"]
    assert a.capabilities("secret/other") == ["read", "update"]


def test_exact_rule_without_capabilities_shadows_a_glob():
    a = acl('path "secret/*" { capabilities = ["read"] }\npath "secret/hidden" {}')
    assert a.capabilities("secret/hidden") == ["deny"]
    assert not allowed(a, "secret/hidden", "read")


def test_longest_prefix_wins():
    a = acl(
        'path "*" { capabilities = ["list"] }\npath "secret/*" { capabilities = ["read"] }\n'
        'path "secret/a/*" { capabilities = ["update"] }'
    )
    assert a.capabilities("other") == ["list"]
    assert a.capabilities("secret/b") == ["read"]
    assert a.capabilities("secret/a/b") == ["update"]


# --- priority of non-exact rules (vault/acl.go) ------------------------------------


@pytest.mark.parametrize(
    "winner, loser, path",
    [
        # 1. the first wildcard or glob occurring later in the path wins
        ("secret/foo/*", "secret/+/*", "secret/foo/bar"),
        ("foo/a*", "foo/+", "foo/ab"),
        ("foo/bar/+/baz", "foo/+/+/baz", "foo/bar/x/baz"),
        # 2. not ending in * wins
        ("foo/+/bar", "foo/+/ba*", "foo/x/bar"),
        ("secret/+", "secret/*", "secret/a"),
        # 3. fewer + segments wins (docs: secret/* over secret/+/+/foo/*)
        ("secret/*", "secret/+/+/foo/*", "secret/a/b/foo/c"),
        ("foo/+/bar/baz", "foo/+/+/baz", "foo/a/bar/baz"),
        # 4. longer wins
        ("foo/+/bar/ba*", "foo/+/bar/b*", "foo/x/bar/baz"),
        # 5. lexicographically larger wins
        ("+/x/+", "+/+/y", "a/x/y"),
    ],
)
def test_priority(winner, loser, path):
    for order in ((winner, loser), (loser, winner)):
        a = acl(*(f'path "{p}" {{ capabilities = ["{"read" if p == winner else "list"}"] }}' for p in order))
        assert a.capabilities(path) == ["read"], order


def test_segment_wildcard_shapes():
    a = acl('path "+" { capabilities = ["read"] }\npath "+/x/*" { capabilities = ["update"] }')
    assert a.capabilities("anything") == ["read"]
    assert a.capabilities("a/b") == ["deny"]
    assert a.capabilities("a/x/") == ["update"]
    assert a.capabilities("a/x/deep/er") == ["update"]
    assert a.capabilities("a/x") == ["deny"]


# --- merging and deny ---------------------------------------------------------------


def test_same_pattern_in_several_policies_is_merged():
    a = acl('path "secret/*" { capabilities = ["read"] }', 'path "secret/*" { capabilities = ["update", "list"] }')
    assert a.capabilities("secret/x") == ["list", "read", "update"]


@pytest.mark.parametrize(
    "pattern, path", [("secret/foo", "secret/foo"), ("secret/*", "secret/x"), ("secret/+/x", "secret/a/x")]
)
def test_deny_wins_whatever_the_order(pattern, path):
    grant = f'path "{pattern}" {{ capabilities = ["create", "read", "update", "sudo"] }}'
    deny = f'path "{pattern}" {{ capabilities = ["deny"] }}'
    for texts in itertools.permutations([grant, deny, grant]):
        a = acl(*texts)
        assert a.capabilities(path) == ["deny"]
        assert not a.allowed(path, "sudo")
        assert not allowed(a, path, "read")


def test_deny_on_a_glob_does_not_override_an_exact_grant():
    a = acl('path "secret/*" { capabilities = ["deny"] }', 'path "secret/open" { capabilities = ["read"] }')
    assert allowed(a, "secret/open", "read")
    assert not allowed(a, "secret/other", "read")


def test_merging_parameter_constraints():
    a = acl(
        'path "x" {\n capabilities = ["update"]\n allowed_parameters = { "a" = ["1"], "b" = [] }\n'
        ' required_parameters = ["a"]\n}',
        'path "x" {\n capabilities = ["create"]\n allowed_parameters = { "a" = ["2"], "b" = ["only"] }\n'
        ' required_parameters = ["b"]\n}',
    )
    assert allowed(a, "x", "update", {"a": "1", "b": "anything"})
    assert allowed(a, "x", "create", {"a": "2", "b": "x"})
    assert not allowed(a, "x", "update", {"a": "3", "b": "x"})
    assert not allowed(a, "x", "update", {"a": "1"})  # b became required too


def test_parameter_constraints_of_one_policy_restrict_the_merged_rule():
    # Vault merges constraints: a second policy that allows only "a" limits the first.
    a = acl(
        'path "x" { capabilities = ["update"] }',
        'path "x" {\n capabilities = ["update"]\n allowed_parameters = { "a" = [] }\n}',
    )
    assert allowed(a, "x", "update", {"a": 1})
    assert not allowed(a, "x", "update", {"b": 1})


# --- operations ---------------------------------------------------------------------


def test_operations_need_their_capability():
    a = acl('path "kv/*" { capabilities = ["read", "create", "patch", "list"] }')
    assert allowed(a, "kv/a", "read")
    assert allowed(a, "kv/a", "create")
    assert allowed(a, "kv/a", "patch")
    assert not allowed(a, "kv/a", "update")
    assert not allowed(a, "kv/a", "delete")
    assert not allowed(a, "kv/a", "renew")  # revoke/renew/rollback need update
    assert not allowed(a, "kv/a", "frobnicate")
    assert allowed(a, "elsewhere", "help")
    with pytest.raises(PermissionDenied, match="^permission denied$"):
        a.check("kv/a", "delete", {})


def test_list_with_and_without_trailing_slash():
    a = acl('path "secret/metadata" { capabilities = ["list"] }\npath "+/sys/policies/acl" { capabilities = ["list"] }')
    assert allowed(a, "secret/metadata/", "list")
    assert allowed(a, "secret/metadata", "list")
    assert allowed(a, "ns1/sys/policies/acl/", "list")
    assert a.capabilities("secret/metadata/") == ["list"]
    assert not allowed(a, "secret/metadata/", "read")


def test_sudo_via_allowed():
    a = acl('path "sys/seal" { capabilities = ["update", "sudo"] }\npath "sys/mounts/*" { capabilities = ["update"] }')
    assert a.allowed("sys/seal", "sudo")
    assert not a.allowed("sys/mounts/x", "sudo")
    assert a.allowed("sys/mounts/x", "update")
    assert not a.allowed("sys/nothing", "deny")


# --- parameter constraints (docs examples) ---------------------------------------------


def test_required_parameters():
    a = acl('path "secret/profile" {\n capabilities = ["create"]\n required_parameters = ["name", "id"]\n}')
    assert allowed(a, "secret/profile", "create", {"name": "n", "id": "1", "other": 1})
    assert not allowed(a, "secret/profile", "create", {"name": "n"})
    assert not allowed(a, "secret/profile", "create", {})


def test_allowed_parameters_with_values_and_globs():
    a = acl(
        'path "secret/foo" {\n capabilities = ["create"]\n allowed_parameters = {\n'
        '  "bar" = ["zip", "zap"]\n  "glob" = ["foo-*"]\n }\n}'
    )
    assert allowed(a, "secret/foo", "create", {"bar": "zip"})
    assert allowed(a, "secret/foo", "create", {"BAR": "zap"})  # names are case-insensitive
    assert allowed(a, "secret/foo", "create", {"glob": "foo-bar"})
    assert allowed(a, "secret/foo", "create", {})  # no parameters at all is allowed
    assert not allowed(a, "secret/foo", "create", {"bar": "zop"})
    assert not allowed(a, "secret/foo", "create", {"glob": "bar-foo"})
    assert not allowed(a, "secret/foo", "create", {"bar": "zip", "other": 1})
    assert allowed(a, "secret/foo", "create", {"bar": ["zip", "zap"]})  # each element allowed
    assert allowed(a, "secret/foo", "create", {"bar": "zip, zap"})  # comma-separated string
    assert not allowed(a, "secret/foo", "create", {"bar": ["zip", "nope"]})


def test_allowed_parameters_with_star():
    a = acl(
        'path "secret/foo" {\n capabilities = ["create"]\n allowed_parameters = {\n'
        '  "bar" = ["zip", "zap"]\n  "*" = []\n }\n}'
    )
    assert allowed(a, "secret/foo", "create", {"anything": 1, "bar": "zip"})
    assert not allowed(a, "secret/foo", "create", {"bar": "other"})
    only_star = acl('path "x" {\n capabilities = ["update"]\n allowed_parameters = { "*" = [] }\n}')
    assert allowed(only_star, "x", "update", {"a": 1})


def test_denied_parameters():
    a = acl(
        'path "secret/foo" {\n capabilities = ["create", "update", "delete"]\n denied_parameters = {\n'
        '  "bar" = []\n  "zip" = ["zap", "z-*"]\n }\n}'
    )
    assert not allowed(a, "secret/foo", "create", {"bar": "x"})
    assert not allowed(a, "secret/foo", "create", {"zip": "zap"})
    assert not allowed(a, "secret/foo", "create", {"zip": "z-1"})
    assert not allowed(a, "secret/foo", "create", {"zip": ["ok", "zap"]})
    assert not allowed(a, "secret/foo", "create", {"zip": "ok,zap"})
    assert allowed(a, "secret/foo", "create", {"zip": "ok", "other": 2})
    assert allowed(a, "secret/foo", "delete", {"bar": "x"})  # delete carries no parameters
    everything = acl('path "x" {\n capabilities = ["update"]\n denied_parameters = { "*" = [] }\n}')
    assert not allowed(everything, "x", "update", {"a": 1})
    assert allowed(everything, "x", "update", {})


def test_non_string_parameter_values():
    a = acl('path "x" {\n capabilities = ["update"]\n allowed_parameters = { "n" = [1, true] }\n}')
    assert allowed(a, "x", "update", {"n": 1})
    assert allowed(a, "x", "update", {"n": True})
    assert not allowed(a, "x", "update", {"n": 2})
    assert not allowed(a, "x", "update", {"n": "1"})


def test_glob_match_like_vault():
    assert glob_match("foo-*", "foo-bar") and not glob_match("foo-*", "bar")
    assert glob_match("*-bar", "foo-bar") and glob_match("*mid*", "a-mid-b")
    assert glob_match("*", "*") and not glob_match("*", "anything")  # too short to be a glob
    assert glob_match("exact", "exact") and not glob_match("exact", "exactly")


def test_wrapping_ttl_bounds():
    a = acl('path "x" {\n capabilities = ["read"]\n min_wrapping_ttl = "1m"\n max_wrapping_ttl = "1h"\n}')
    assert not allowed(a, "x", "read")  # the response must be wrapped
    assert allowed(a, "x", "read", wrap_ttl=300)
    assert not allowed(a, "x", "read", wrap_ttl=30)
    assert not allowed(a, "x", "read", wrap_ttl=7200)


# --- built-in policies ------------------------------------------------------------------


def test_default_policy():
    default = ACL([parse_policy("default", DEFAULT_POLICY_TEXT)])
    assert allowed(default, "auth/token/lookup-self", "read")
    assert allowed(default, "auth/token/renew-self", "update")
    assert allowed(default, "sys/capabilities-self", "update")
    assert allowed(default, "cubbyhole/mine", "create")
    assert allowed(default, "sys/tools/hash/sha2-256", "update")
    assert allowed(default, "identity/oidc/provider/p/authorize", "read")
    assert default.capabilities("secret/foo") == ["deny"]
    assert not allowed(default, "secret/foo", "read")
    assert not allowed(default, "sys/mounts", "read")
    # templated rules need an identity entity, which Strongroom tokens never have
    assert default.capabilities("identity/entity/id/{{identity.entity.id}}") == ["deny"]
    assert any(r.templated for r in parse_policy("default", DEFAULT_POLICY_TEXT).rules)


def test_root_allows_everything():
    root = ACL.root()
    assert root.is_root
    assert root.capabilities("anything/at/all") == ["root"]
    assert root.allowed("sys/seal", "sudo")
    for operation in ("read", "list", "create", "update", "patch", "delete"):
        root.check("any/path", operation, {"whatever": 1})
    assert ACL([Policy(name="root", raw="")]).is_root


def test_no_policies_deny_everything():
    assert ACL([]).capabilities("secret/x") == ["deny"]
    assert not allowed(ACL([]), "secret/x", "read")


# --- properties ----------------------------------------------------------------------

segments = st.text(alphabet="abcxyz-_.0", min_size=1, max_size=5)
paths = st.lists(segments, min_size=1, max_size=5).map("/".join)
GRANTS = ["read", "list", "update", "delete", "create", "sudo", "deny"]


def _globs_matching(path: str) -> list[str]:
    parts = path.split("/")
    globs = ["*"] + [path[:i] + "*" for i in range(len(path))]
    for i in range(len(parts)):
        wild = parts[:i] + ["+"] + parts[i + 1 :]
        globs.append("/".join(wild))
        if i < len(parts) - 1:
            globs.append("/".join(wild[: i + 1]) + "/*")
    return globs


@settings(max_examples=200, deadline=None)
@given(path=paths, exact=st.sets(st.sampled_from(GRANTS[:-1]), min_size=1), data=st.data())
def test_exact_rule_always_wins_over_globs(path, exact, data):
    globs = data.draw(st.lists(st.sampled_from(_globs_matching(path)), min_size=1, max_size=6))
    glob_caps = [data.draw(st.sets(st.sampled_from(GRANTS), min_size=1)) for _ in globs]
    texts = [
        f'path "{g}" {{ capabilities = {sorted(c)!r} }}'.replace("'", '"')
        for g, c in zip(globs, glob_caps, strict=True)
    ]
    texts.append(f'path "{path}" {{ capabilities = {sorted(exact)!r} }}'.replace("'", '"'))
    order = data.draw(st.permutations(texts))
    a = acl(*order)
    assert a.capabilities(path) == sorted(exact)
    assert a.allowed(path, "sudo") == ("sudo" in exact)


@settings(max_examples=100, deadline=None)
@given(path=paths, data=st.data())
def test_a_matching_glob_always_decides_a_path_without_exact_rule(path, data):
    globs = data.draw(st.lists(st.sampled_from(_globs_matching(path)), min_size=1, max_size=6, unique=True))
    a = acl(*(f'path "{g}" {{ capabilities = ["read"] }}' for g in globs))
    assert a.capabilities(path) == ["read"]


def test_distinguishes_create_only_where_one_of_create_and_update_is_granted():
    acl = ACL(
        [
            parse_policy(
                "p",
                """
path "kv/create-only" { capabilities = ["create"] }
path "kv/update-only" { capabilities = ["update", "read"] }
path "kv/both" { capabilities = ["create", "update"] }
path "kv/denied" { capabilities = ["deny"] }
path "kv/tree/*" { capabilities = ["create", "read"] }
""",
            )
        ]
    )
    assert acl.distinguishes_create("kv/create-only")
    assert acl.distinguishes_create("/kv/update-only")
    assert acl.distinguishes_create("kv/tree/deep/key")
    assert not acl.distinguishes_create("kv/both")
    assert not acl.distinguishes_create("kv/denied")
    assert not acl.distinguishes_create("kv/unmatched")
    assert not ACL.root().distinguishes_create("kv/create-only")
