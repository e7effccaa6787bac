"""``sys/leases``: look up, list, renew and revoke leases — the tokens' (``auth/token_leases.py``).

https://developer.hashicorp.com/vault/api-docs/system/leases

Strongroom's engines issue no leases, so every lease is a token's, with
Vault's lease id ``<creation path>/<salted token id>``.  As in Vault (and
OpenBao 2.7.2, checked request by request): a token lease is looked up,
listed and revoked here, but renewed only through ``auth/token/renew*``
("tokens cannot be renewed through this endpoint"); revoking an unknown lease
answers 204; ``sync=false`` answers 202 (the revocation is done at once all
the same).  Vault's pre-0.9 spellings ``sys/renew``, ``sys/revoke``,
``sys/revoke-prefix`` and ``sys/revoke-force`` are served too (OpenBao
dropped them).  Listing and the prefix revocations need ``sudo``
(``core.SUDO_SYS_PATHS``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.auth.token_leases import TokenLeases
from strongroom.errors import InvalidRequest
from strongroom.fields import bool_field, string_field, to_duration_seconds
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.core import Core


def _lease_id(req: Request, url_lease_id: str = "") -> str:
    """The lease id of the body, else of the URL; ``InvalidRequest`` without one."""
    lease = string_field(req.data, "lease_id") or url_lease_id
    if not lease:
        raise InvalidRequest("lease_id must be specified")
    return lease


def lease_paths(core: Core) -> list[Path]:
    """The ``sys/leases`` entries of the system backend's path table."""
    leases = TokenLeases(core.tokens)

    def lookup(req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/system/leases#read-lease"""
        data = leases.lookup(_lease_id(req))
        if data is None:
            raise InvalidRequest("invalid lease")
        return Response(data=data)

    def list_leases(req: Request, prefix: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/system/leases#list-leases (sudo)"""
        keys = leases.keys(prefix)
        return Response(data={"keys": keys}) if keys else Response(status=404)

    def renew(req: Request, url_lease_id: str = "") -> Response:
        """https://developer.hashicorp.com/vault/api-docs/system/leases#renew-lease"""
        lease = _lease_id(req, url_lease_id)
        to_duration_seconds("increment", req.data.get("increment"), validated=True)
        entry = leases.entry(lease)
        if entry is None:
            raise InvalidRequest("lease not found")
        if not entry.renewable:
            raise InvalidRequest("lease is not renewable")  # Vault judges this before the kind of lease
        raise InvalidRequest("tokens cannot be renewed through this endpoint")

    def revoke(req: Request, url_lease_id: str = "") -> Response:
        """https://developer.hashicorp.com/vault/api-docs/system/leases#revoke-lease"""
        leases.revoke(_lease_id(req, url_lease_id))
        return Response(status=204 if bool_field(req.data, "sync", True) else 202)

    def revoke_prefix(req: Request, prefix: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/system/leases#revoke-prefix (sudo)"""
        leases.revoke_prefix(prefix)
        return Response(status=204 if bool_field(req.data, "sync", True) else 202)

    def revoke_force(req: Request, prefix: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/system/leases#revoke-force (sudo): a token
        revocation has no backend to ignore errors of, so this is revoke-prefix."""
        leases.revoke_prefix(prefix)
        return Response(status=204)

    def tidy(req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/system/leases#tidy-leases (runs to completion)"""
        revoked = core.tokens.tidy()
        return Response(status=202, warnings=[f"Tidy operation completed: {revoked} dead tokens revoked."])

    return [
        Path(
            "leases/lookup",
            {logical.UPDATE: lookup},
            synopsis="View or list lease metadata.",
            description="'lease_id': its issue, expiry and last renewal times, TTL and whether it renews.",
        ),
        Path(
            "leases/lookup/(?P<prefix>.*)",
            {logical.LIST: list_leases},
            synopsis="View or list lease metadata.",
            description="LIST: the lease ids and folders under the prefix (sudo).",
        ),
        Path(
            "(?:leases/)?renew(?:/(?P<url_lease_id>.+))?",
            {logical.UPDATE: renew},
            synopsis="Renews a lease, requesting to extend the lease.",
            description="Every lease here is a token's: renew it through auth/token/renew instead.",
        ),
        Path(
            "(?:leases/)?revoke(?:/(?P<url_lease_id>.+))?",
            {logical.UPDATE: revoke},
            synopsis="Revokes a lease immediately.",
            description="The token of the lease and its children are revoked; an unknown lease answers 204.",
        ),
        Path(
            "(?:leases/)?revoke-prefix/(?P<prefix>.+)",
            {logical.UPDATE: revoke_prefix},
            synopsis="Revokes all secrets (via a lease ID prefix) or tokens (via the tokens' path property) "
            "generated under a given prefix immediately.",
            description="Needs sudo.  'auth/token/create/<role>' revokes every token of a role.",
        ),
        Path(
            "(?:leases/)?revoke-force/(?P<prefix>.+)",
            {logical.UPDATE: revoke_force},
            synopsis="Revokes all secrets or tokens generated under a given prefix immediately, "
            "ignoring backend errors.",
            description="Needs sudo.  Tokens have no backend errors to ignore: the same as revoke-prefix.",
        ),
        Path(
            "leases/tidy",
            {logical.UPDATE: tidy},
            synopsis="This endpoint performs cleanup tasks that can be run if certain error conditions have occurred.",
            description="Revokes dead tokens and removes dangling index entries; it runs to completion.",
        ),
    ]
