"""ACL policies: Vault's built-in policies, policy names, and the public API.

https://developer.hashicorp.com/vault/docs/concepts/policies

A policy is HCL (or JSON) made of ``path`` blocks.  ``parse_policy``
(``policy_parser``) turns the text into an immutable ``Policy``; ``ACL``
(``policy_acl``) merges the rules of a token's policies and answers "may this
operation run on this path with these parameters?".  This module holds what
belongs to policies as stored objects (the text of ``default``, which names
may be written or deleted) and re-exports the names callers import from
``strongroom.core.policy``.
"""

from __future__ import annotations

from strongroom.core.policy_acl import ACL, OPERATION_CAPABILITY, ROOT, glob_match
from strongroom.core.policy_parser import CAPABILITIES, DENY, LEGACY_POLICIES, SUDO, PathRule, Policy, parse_policy
from strongroom.errors import InvalidRequest

__all__ = [
    "ACL",
    "CAPABILITIES",
    "DEFAULT_POLICY_TEXT",
    "DENY",
    "IMMUTABLE_POLICIES",
    "LEGACY_POLICIES",
    "OPERATION_CAPABILITY",
    "PathRule",
    "Policy",
    "ROOT",
    "SUDO",
    "glob_match",
    "parse_policy",
    "validate_name",
]

# Policies that can never be written or deleted; ``default`` may be edited but not deleted.
IMMUTABLE_POLICIES = ("root", "response-wrapping", "control-group")

DEFAULT_POLICY_TEXT = """
# A token may read its own properties.
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# A token may renew itself.
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# A token may revoke itself.
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# A token may ask which capabilities it has on a path.
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# A token may read its own identity entity, by id or by name.
path "identity/entity/id/{{identity.entity.id}}" {
    capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
    capabilities = ["read"]
}

# A token may read the ACL that results from all its policies (used by UIs).
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# A token may renew a lease whose id it knows (old and new endpoint).
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# A token may look up a lease whose id it knows.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# A token owns its cubbyhole.
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Response wrapping: wrap a value, look up and unwrap a wrapping token.
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# General purpose hashing.
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# A token may check a control group request whose accessor it holds.
path "sys/control-group/request" {
    capabilities = ["update"]
}

# A token may call the authorization endpoint of OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
"""


def validate_name(name: str, operation: str) -> str:
    """Check that policy ``name`` may be written (``create``/``update``) or
    ``delete``d, and return it normalised (trimmed, lower-cased) as Vault does.

    ``root`` (and Vault's internal ``response-wrapping``/``control-group``) can be
    neither; ``default`` can be edited but not deleted.
    https://developer.hashicorp.com/vault/api-docs/system/policies
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("policy name must be provided")
    name = name.strip().lower()
    if operation in ("create", "update", "write"):
        if name in IMMUTABLE_POLICIES:
            raise InvalidRequest(f'cannot update "{name}" policy')
    elif operation == "delete":
        if name in IMMUTABLE_POLICIES:
            raise InvalidRequest(f'cannot delete "{name}" policy')
        if name == "default":
            raise InvalidRequest("cannot delete default policy")
    elif operation != "read":
        raise ValueError(f"unknown policy operation {operation!r}")
    return name
