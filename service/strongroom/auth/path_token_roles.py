"""``auth/token/roles`` and ``auth/token/roles/<name>``: list, read, write and delete token roles.

https://developer.hashicorp.com/vault/api-docs/auth/token#list-token-roles

The entries of the token mount's path table for the roles themselves; creating
a token against a role is ``auth/token/create/<name>`` (``path_token.py``).
"""

from __future__ import annotations

from strongroom.auth.token_roles import ROLE_NAME, TokenRole, TokenRoles
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response


def role_paths(roles: TokenRoles) -> list[Path]:
    """The path table entries for token roles kept in ``roles``."""

    def list_roles(req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#list-token-roles"""
        names = roles.names()
        return Response(data={"keys": names}) if names else Response(status=404)

    def read_role(req: Request, name: str) -> Response | None:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#read-token-role"""
        role = roles.get(name)
        return None if role is None else Response(data=role.render())

    def write_role(req: Request, name: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#create-update-token-role

        A create starts from Vault's defaults; an update changes only the fields given."""
        role, warnings = (roles.get(name) or TokenRole(name)).parse(req.data)
        roles.put(role)
        return Response(warnings=warnings) if warnings else Response(status=204)

    def delete_role(req: Request, name: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/token#delete-token-role"""
        roles.delete(name)
        return Response(status=204)

    def role_exists(req: Request, name: str) -> bool:
        return roles.get(name) is not None

    return [
        Path(
            "roles/?",
            {logical.LIST: list_roles},
            synopsis="This endpoint lists configured roles.",
            description="The names of the token roles, under 'keys'.",
        ),
        Path(
            f"roles/(?P<name>{ROLE_NAME})",
            {
                logical.READ: read_role,
                logical.CREATE: write_role,
                logical.UPDATE: write_role,
                logical.DELETE: delete_role,
            },
            exists=role_exists,
            synopsis="Create, read, update or delete a token role.",
            description=(
                "A role lets 'auth/token/create/<name>' create tokens with any subset of 'allowed_policies' "
                "(or 'allowed_policies_glob'), none of 'disallowed_policies' (or '_glob'), as orphans ('orphan'), "
                "'renewable' or not, periodic ('token_period'), with 'token_explicit_max_ttl', "
                "'token_num_uses' and 'token_no_default_policy', and 'path_suffix' added to their path.  "
                "Service tokens only; 'token_bound_cidrs' is not supported."
            ),
        ),
    ]
