"""Differential tier: the same requests to OpenBao (``bao server -dev``, the
open fork of Vault) and to Strongroom (``strongroom server -dev``); status codes
must be equal and response shapes (keys, nesting, JSON types; not values) too.

The whole sequence in ``cases.py`` is sent to each server once, in order (later
requests use tokens and accessors earlier ones returned); each case is then one
test, so a failure names the request.  Differences that are known and intended
are in ``ALLOWED`` below, each with its reason; anything else fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.differential.cases import CASES, Case, Outcome, run
from tests.differential.shapes import Allowed, diff, shape, unexplained

pytestmark = pytest.mark.openbao

# Known, intended differences.  Case and difference are fnmatch patterns over
# the case name and one line of the diff ("status <bao> != <strongroom>",
# "missing <path>" = only OpenBao has it, "extra <path>" = only Strongroom).
ALLOWED = [
    Allowed(
        "rekey status",
        "status 405 != 200|missing body.errors|extra body.*",
        "OpenBao 2.7.2 turns sys/rekey/* off (disable_unauthed_rekey_endpoints defaults to true) and has no "
        "authenticated rekey; Strongroom serves it to a token with sudo on the path, so `operator rekey` works",
    ),
    Allowed(
        "generate root wrong nonce",
        "status 500 != 400",
        "OpenBao answers a wrong nonce with a 500 (its handler returns the error bare); it is the caller's mistake",
    ),
    Allowed(
        "approle create unbound role",
        "status 500 != 400",
        "OpenBao answers a role without any constraint with a 500; it is the client's mistake, so a 400",
    ),
    Allowed(
        "seal status",
        "missing body.commit_date|extra body.build_date",
        "OpenBao renamed Vault's build_date to commit_date; Strongroom follows Vault",
    ),
    Allowed(
        "health*",
        "extra body.clock_skew_ms|extra body.echo_duration_ms|extra body.enterprise|extra body.performance_standby",
        "Vault's sys/health carries these (HAProxy and clients read performance_standby); OpenBao dropped them",
    ),
    Allowed(
        "leader",
        "extra body.*",
        "without HA Vault still returns every sys/leader field; OpenBao returns only ha_enabled",
    ),
    Allowed(
        "list mounts",
        "missing body*.cubbyhole/|missing body*.identity/",
        "Strongroom has no cubbyhole or identity engine",
    ),
    Allowed(
        "read*policy*",
        "missing body*.modified|missing body*.version|missing body*.cas_required|"
        "missing body*.allow_*_in_identity_templates",
        "OpenBao-only policy fields (policy CAS and versioning, identity template options); not in Vault",
    ),
    Allowed(
        "kv2 read metadata*",
        "missing body.data.current_metadata_version|missing body.data.metadata_cas_required",
        "OpenBao-only KV v2 metadata CAS; not in Vault",
    ),
    Allowed("kv2 read config*", "missing body.data.metadata_cas_required", "OpenBao-only KV v2 metadata CAS"),
    Allowed(
        "health * informational",
        "status 200 != 400|missing body.*|extra body.errors",
        "a 1xx health code is no final status (Vault sends 100 Continue as the answer, HAProxy answers 502); "
        "Strongroom refuses every code outside 200-599, used by the node's state or not",
    ),
    Allowed(
        "tune negative ttl",
        "status 204 != 400|body empty != json",
        "OpenBao stores a negative default_lease_ttl as it is; a negative lease is meaningless, refused",
    ),
    Allowed(
        "kv2 read version negative",
        "status 200 != 400|missing body.*|extra body.errors",
        "OpenBao reads version=-1 as the latest version; Strongroom refuses a negative version (issue 10)",
    ),
    Allowed(
        "kv2 configure max_versions beyond uint32",
        "status 204 != 400|body empty != json",
        "OpenBao wraps max_versions into a uint32 (4294967296 becomes 0, the default); Strongroom refuses it",
    ),
    Allowed(
        "metrics without token",
        "status 200 != 403|body text != json",
        "bao -dev serves sys/metrics without a token; Strongroom's dev listener keeps metrics token-protected",
    ),
    Allowed(
        "transit create derived ecdsa",
        "status 500 != 400",
        "OpenBao answers this request mistake with a 500 (its error wrapped as internal); Strongroom says 400",
    ),
    Allowed(
        "transit export public key of symmetric",
        "status 500 != 400",
        "OpenBao answers this request mistake with a 500 (its error wrapped as internal); Strongroom says 400",
    ),
    Allowed(
        "role write batch orphan",
        "status 204 != 400|body empty != json",
        "Strongroom issues service tokens only: a role asking for batch tokens is refused, never stored unused",
    ),
    Allowed(
        "role write bound cidrs",
        "status 204 != 400|body empty != json",
        "token_bound_cidrs is not enforced by Strongroom yet: refused, as for userpass and AppRole, not stored",
    ),
    Allowed(
        "role create token lookup",
        "extra body.data.period",
        "a token created against a periodic role shows the period it renews with; Vault and OpenBao keep the "
        "role's period in the lease only",
    ),
    Allowed(
        "leases * old path",
        "status 404 != *|body json != empty",
        "Vault still serves sys/renew and sys/revoke (its pre-0.9 spellings); OpenBao 2.7.2 dropped them",
    ),
]


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory) -> Path:
    """Where each server's file audit device writes (``<server>.log``)."""
    return tmp_path_factory.mktemp("differential-audit")


@pytest.fixture(scope="module")
def outcomes(openbao_dev_server, strongroom_dev_server, audit_dir) -> dict[str, dict[str, Outcome]]:
    """Every case's outcome on each server: ``{"openbao": {...}, "strongroom": {...}}``."""
    results = {}
    for name, server in (("openbao", openbao_dev_server), ("strongroom", strongroom_dev_server)):
        refs = {"audit_path": str(audit_dir / f"{name}.log")}
        results[name] = run(server.url, refs)
    return results


def differences(reference: Outcome, candidate: Outcome) -> list[str]:
    """Status and shape differences of one case, allowed ones included."""
    found = []
    if reference.status != candidate.status:
        found.append(f"status {reference.status} != {candidate.status}")
    if reference.body is None or candidate.body is None:
        if (reference.body is None) != (candidate.body is None):
            found.append(f"body {_kind(reference)} != {_kind(candidate)}")
        return found
    return found + diff(shape(reference.body), shape(candidate.body))


def _kind(outcome: Outcome) -> str:
    if outcome.body is not None:
        return "json"
    return "empty" if not outcome.text else "text"


def _explain(case: Case, reference: Outcome, candidate: Outcome, problems: list[str]) -> str:
    def show(outcome: Outcome) -> str:
        text = json.dumps(outcome.body, sort_keys=True) if outcome.body is not None else outcome.text
        return f"{outcome.status} {text[:600]}"

    return (
        f"{case.method} {case.path} body={case.body!r}\n  differences: {problems}\n"
        f"  openbao:    {show(reference)}\n  strongroom: {show(candidate)}"
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_status_and_shape(case: Case, outcomes):
    reference, candidate = outcomes["openbao"][case.name], outcomes["strongroom"][case.name]
    found = differences(reference, candidate)
    problems = unexplained(case.name, found, ALLOWED)
    assert not problems, _explain(case, reference, candidate, problems)


def test_case_names_are_unique():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


def test_allow_list_has_no_stale_entries(outcomes):
    """Every allowed difference still happens; an entry that no longer matches
    anything is dead weight that could hide a future regression."""
    used = {
        a
        for case in CASES
        for d in differences(outcomes["openbao"][case.name], outcomes["strongroom"][case.name])
        for a in ALLOWED
        if a.covers(case.name, d)
    }
    assert [a for a in ALLOWED if a not in used] == []


def test_audit_logs_hash_what_they_record(outcomes, audit_dir):
    """Both servers logged while the file device was on, and neither wrote the
    audit-hash input or a secret in plaintext."""
    for name in ("openbao", "strongroom"):
        text = (audit_dir / f"{name}.log").read_text()
        assert '"type":"request"' in text.replace(" ", ""), name
        assert "hmac-sha256:" in text and "hunter2" not in text, name
