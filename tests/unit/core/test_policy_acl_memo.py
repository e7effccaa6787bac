"""The ACL remembers which rule decides a path (core/policy_acl.py ``LOOKUP_MEMO``): same answers, bounded."""

from __future__ import annotations

from strongroom.core.policy import ACL, parse_policy

POLICY = parse_policy(
    "app",
    """
path "secret/data/bench/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/bench/*" { capabilities = ["read", "list"] }
path "secret/data/bench/private" { capabilities = ["deny"] }
path "secret/+/team/*" { capabilities = ["read"] }
path "secret/data/other/*" { capabilities = ["read"] }
""",
)
PATHS = [
    "secret/data/bench/k1",
    "secret/data/bench/private",
    "secret/metadata/bench/",
    "secret/metadata/bench",
    "secret/data/team/x",
    "secret/config",
    "secret/data/other/y",
]
OPERATIONS = ["read", "create", "update", "list", "delete"]


def answers(acl: ACL) -> list:
    return [
        (acl.permits(p, op), acl.denies(p, op), acl.capabilities(p), acl.distinguishes_create(p))
        for p in PATHS
        for op in OPERATIONS
    ]


def test_remembered_answers_are_the_answers():
    acl = ACL([POLICY])
    first = answers(acl)
    assert acl._memo  # the second round is answered from the memo
    assert answers(acl) == first == answers(ACL([POLICY]))
    assert first[0][0] is True and first[OPERATIONS.index("read") + len(OPERATIONS)][0] is False


def test_the_memo_is_bounded():
    acl = ACL([POLICY])
    for i in range(ACL.LOOKUP_MEMO + 10):
        acl.permits(f"secret/data/bench/k{i}", "read")
    assert len(acl._memo) <= ACL.LOOKUP_MEMO
    assert acl.permits("secret/data/bench/k1", "read") and not acl.permits("secret/data/bench/private", "read")
