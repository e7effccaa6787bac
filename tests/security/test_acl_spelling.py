"""Finding 1 (critical): a ``deny`` rule walked around by spelling the path differently.

A delegated operator may manage every policy but its own and every mount but
``prot/``.  Each other spelling of those two paths must be refused (400: not a
canonical path) or judged on the canonical name (403), never carried out — on
a node reached directly and through HAProxy, which must not "fix" a spelling
into an allowed one either.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.conftest import Target

DELEG_POLICY = """
path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policies/acl/deleg" { capabilities = ["deny"] }
path "sys/mounts/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
path "sys/mounts/prot" { capabilities = ["deny"] }
""".strip()
TAKEOVER = {"policy": 'path "*" { capabilities = ["sudo","create","read","update","delete","list"] }'}

POLICY_SPELLINGS = [
    "/v1/sys/policies/acl//deleg",
    "/v1/sys/policies/acl/%2Fdeleg",
    "/v1/sys/policies/acl/DELEG",
    "/v1/sys/policies/acl/Deleg",
    "/v1/sys/policies/acl/deleg%20",
    "/v1/sys/policies/acl/%20deleg",
    "/v1/sys/policies/acl/./deleg",
    "/v1/sys/policies/acl/x/../deleg",
    "/v1/sys//policies/acl/deleg",
]
MOUNT_SPELLINGS = [
    "/v1/sys/mounts//prot",
    "/v1/sys/mounts/%2Fprot",
    "/v1/sys/mounts/prot/",
    "/v1/sys/mounts/./prot",
]


@pytest.fixture
def delegated(target: Target) -> str:
    """Policy ``deleg`` as above, a KV mount at ``prot/``, and a fresh token holding ``deleg``.

    The state is (re)made before each test, so one test that walks around the
    rule does not hand the next one a rewritten policy or a missing mount."""
    target.ok("PUT", "sys/policies/acl/deleg", {"policy": DELEG_POLICY})
    if "prot/" not in target.ok("GET", "sys/mounts").json():
        target.ok("POST", "sys/mounts/prot", {"type": "kv", "options": {"version": "1"}})
    answer = target.ok("POST", "auth/token/create", {"policies": ["deleg"], "ttl": "10m"})
    return answer.json()["auth"]["client_token"]


def _policy_text(target: Target) -> str:
    return target.ok("GET", "sys/policies/acl/deleg").json()["data"]["policy"]


def test_the_rules_hold_for_the_canonical_spelling(target, delegated):
    """Finding 1, control: the canonical paths are denied and their neighbours allowed,
    so the spellings below are refused for their spelling, not for lack of rights."""
    assert target.send("PUT", "/v1/sys/policies/acl/deleg", token=delegated, body=TAKEOVER).status == 403
    assert target.send("DELETE", "/v1/sys/mounts/prot", token=delegated).status == 403
    assert target.send(
        "PUT",
        "/v1/sys/policies/acl/other-deleg",
        token=delegated,
        body={"policy": 'path "secret/*" { capabilities = ["read"] }'},
    ).status in (200, 204)
    assert target.send("DELETE", "/v1/sys/policies/acl/other-deleg", token=delegated).status in (200, 204)


@pytest.mark.parametrize("raw_path", POLICY_SPELLINGS)
def test_a_denied_policy_cannot_be_rewritten_under_another_spelling(target, delegated, raw_path):
    """Finding 1: ``PUT sys/policies/acl//deleg`` (and %2F, case, whitespace, dots)
    rewrote the token's own denied policy into ``path "*"`` with sudo."""
    before = _policy_text(target)
    answer = target.send("PUT", raw_path, token=delegated, body=TAKEOVER)
    assert answer.status in (400, 403), answer
    assert answer.errors()
    assert _policy_text(target) == before == DELEG_POLICY
    # Judged and stored under one name: the token still cannot read what root alone may.
    assert target.send("GET", "/v1/sys/audit", token=delegated).status == 403


@pytest.mark.parametrize("raw_path", MOUNT_SPELLINGS)
def test_a_denied_mount_cannot_be_removed_under_another_spelling(target, delegated, raw_path):
    """Finding 1: ``DELETE sys/mounts//prot`` (and %2F, a trailing slash, ``./``)
    removed the mount the token was denied."""
    answer = target.send("DELETE", raw_path, token=delegated)
    assert answer.status in (400, 403), answer
    assert answer.errors()
    assert "prot/" in target.ok("GET", "sys/mounts").json()


def _spelled_segment(draw, segment: str) -> str:
    """``segment`` with each character kept, upper-cased or percent-encoded, and
    maybe wrapped in (encoded) whitespace or control characters."""
    out = []
    for char in segment:
        how = draw(st.sampled_from(["keep", "upper", "encode", "encode-lower"]))
        if how == "upper":
            out.append(char.upper())
        elif how == "encode":
            out.append(f"%{ord(char):02X}")
        elif how == "encode-lower":
            out.append(f"%{ord(char):02x}")
        else:
            out.append(char)
    around = st.sampled_from(["", "", "", "%20", "%09", "%0A", "%00", "%C2%A0", "%E2%80%8B"])
    return draw(around) + "".join(out) + draw(around)


@st.composite
def spellings(draw, path: str) -> str:
    """Another way to write ``/v1/<path>``: one or two places of it (a segment,
    a separator, the end) respelled with case, percent-encoding, whitespace,
    control characters, empty / ``.`` / ``..`` segments or encoded slashes;
    the rest kept, so that the spelling still reaches the handler it aims at."""
    segments = path.split("/")
    places = 2 * len(segments)  # segments, the separators between them, the end
    chosen = set(draw(st.lists(st.integers(0, places - 1), min_size=1, max_size=2)))
    separators = st.sampled_from(["//", "/./", "/x/../", "%2F", "%2f", "/%2E/", "/.%2F", "/%2e/"])
    spelled = ""
    for i, segment in enumerate(segments):
        if i:
            spelled += draw(separators) if 2 * i - 1 in chosen else "/"
        spelled += _spelled_segment(draw, segment) if 2 * i in chosen else segment
    if places - 1 in chosen:
        spelled += draw(st.sampled_from(["/", "/.", "%2F", "//", "%20", "/%00"]))
    return "/v1/" + spelled


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_spelling_of_a_denied_path_is_carried_out(target, delegated, data):
    """Finding 1, fuzzed: whatever the spelling of ``sys/policies/acl/deleg`` or
    ``sys/mounts/prot``, the denied policy is never rewritten, the denied mount
    never removed, and no spelling gets a 5xx."""
    if data.draw(st.booleans(), label="policy"):
        raw_path = data.draw(spellings("sys/policies/acl/deleg"), label="path")
        answer = target.send("PUT", raw_path, token=delegated, body=TAKEOVER)
    else:
        raw_path = data.draw(spellings("sys/mounts/prot"), label="path")
        answer = target.send("DELETE", raw_path, token=delegated)
    assert answer.status < 500, (raw_path, answer)
    rewritten = _policy_text(target) != DELEG_POLICY
    removed = "prot/" not in target.ok("GET", "sys/mounts").json()
    if rewritten:
        target.ok("PUT", "sys/policies/acl/deleg", {"policy": DELEG_POLICY})
    if removed:
        target.ok("POST", "sys/mounts/prot", {"type": "kv", "options": {"version": "1"}})
    assert not rewritten and not removed, (raw_path, answer)
