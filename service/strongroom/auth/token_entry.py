"""What a service token is: its entry, its id format, its policies and its TTLs.

https://developer.hashicorp.com/vault/docs/concepts/tokens
https://developer.hashicorp.com/vault/docs/concepts/tokens#token-time-to-live-periodic-tokens-and-explicit-max-ttls

Pure values and arithmetic, no storage: ``TokenEntry`` (Vault's
``logical.TokenEntry``), the rules for generated and chosen token ids, Vault's
policy sanitising and its TTL calculation (``calculate_ttl``, which never grants
a token life past its max TTL).  The ``TokenStore`` persists entries and applies
these rules with its own clock and system TTLs.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from strongroom.durations import human_duration
from strongroom.errors import InvalidRequest

DEFAULT_TTL = 768 * 3600
# Vault's tokenRevocationPending: the token is fulfilling its last use or being revoked.
REVOCATION_PENDING = -1
SERVICE_TOKEN_PREFIX = "hvs."
TOKEN_LENGTH = 24

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def sanitize_policies(policies: Iterable[str], add_default: bool) -> list[str]:
    """Vault's ``policyutil.SanitizePolicies``: trimmed, lower-cased, empty names
    dropped, ``root`` alone if present, ``default`` added when asked, sorted and
    de-duplicated."""
    names = [p.strip().lower() for p in policies]
    names = [p for p in names if p]
    if "root" in names:
        return ["root"]
    if add_default and "default" not in names:
        names.append("default")
    return sorted(set(names))


def random_base62(randbytes: Callable[[int], bytes], length: int) -> str:
    """``length`` characters from ``[0-9A-Za-z]``, each equally likely, drawn from
    ``randbytes`` (the body of token ids and accessors)."""
    out: list[str] = []
    while len(out) < length:
        for byte in randbytes(length * 2):
            if byte < 248:  # 248 = 4 * 62: reject the tail so every character is equally likely
                out.append(_BASE62[byte % 62])
                if len(out) == length:
                    break
    return "".join(out)


def check_custom_id(token_id: str) -> None:
    """Vault's rules for a chosen token id: it may not look like a generated one
    (no ``hvs.`` or ``s.`` prefix, no ``.`` at all); ``InvalidRequest`` otherwise."""
    if token_id.startswith(SERVICE_TOKEN_PREFIX):
        raise InvalidRequest("custom token ID cannot have the 'hvs.' prefix")
    if token_id.startswith("s."):
        raise InvalidRequest("custom token ID cannot have the 's.' prefix")
    if "." in token_id:
        raise InvalidRequest("custom token ID cannot have a '.' in the value")


def calculate_ttl(
    *,
    now: float,
    start: float,
    default_ttl: int,
    max_ttl: int,
    ttl: int = 0,
    period: int = 0,
    explicit_max_ttl: int = 0,
    increment: int = 0,
) -> tuple[int, list[str]]:
    """Vault's ``framework.CalculateTTL`` for a token: the TTL to grant and the
    warnings to show.

    A periodic token gets ``period`` (capped by the effective max TTL) and
    lives until its explicit max TTL, if any; any other token gets
    ``increment``, else ``ttl``, else ``default_ttl``, capped so that it ends
    no later than ``start`` + min(``max_ttl``, explicit max TTL).  ``start`` is
    the issue time, ``now`` the time of the calculation (unix seconds).  Whole
    seconds, rounded so that a capped token never outlives its limit; a token
    already past its limit raises ``InvalidRequest``."""
    if 0 < explicit_max_ttl < max_ttl:
        max_ttl = explicit_max_ttl
    warnings: list[str] = []
    limit = None
    if period > 0:
        if period > max_ttl:
            warnings.append(
                f'period of "{human_duration(int(period))}" exceeded the effective max_ttl of '
                f'"{human_duration(int(max_ttl))}"; period value is capped accordingly'
            )
            period = max_ttl
        granted = period
        if explicit_max_ttl > 0:
            limit = start + explicit_max_ttl
    else:
        granted = increment if increment > 0 else ttl if ttl > 0 else default_ttl
        limit = start + max_ttl
    if limit is not None:
        remaining = math.floor(limit - now)
        if remaining <= 0:
            raise InvalidRequest("past the max TTL, cannot renew")
        if granted > remaining:
            warnings.append(
                f'TTL of "{human_duration(int(granted))}" exceeded the effective max_ttl of '
                f'"{human_duration(int(remaining))}"; TTL value is capped accordingly'
            )
            granted = remaining
    return granted, warnings


@dataclass
class TokenEntry:
    """One service token (Vault's ``logical.TokenEntry``).

    ``id`` is the secret token; it is never stored and is empty on entries found
    by accessor.  ``parent`` is the parent's id hash ("" for orphans); ``role``
    the token role it was created against ("" for none).  ``ttl``
    is the TTL at creation (0: never expires, root tokens only); ``lease_ttl``
    the TTL granted by the last creation or renewal; ``expire_at`` the unix time
    the token stops working (None: never).  ``num_uses`` 0 is unlimited, and
    ``REVOCATION_PENDING`` (-1) marks a token serving its last use.
    """

    id: str = field(default="", repr=False)
    accessor: str = ""
    policies: list[str] = field(default_factory=list)
    parent: str = ""
    path: str = "auth/token/create"
    meta: dict[str, str] | None = None
    display_name: str = "token"
    num_uses: int = 0
    creation_time: int = 0
    ttl: int = 0
    explicit_max_ttl: int = 0
    period: int = 0
    renewable: bool = True
    type: str = "service"
    entity_id: str = ""
    role: str = ""
    issue_time: float = 0.0
    expire_at: float | None = None
    lease_ttl: int = 0
    last_renewal: float | None = None
    salted_id: str = field(default="", repr=False, compare=False)

    @property
    def orphan(self) -> bool:
        """True when the token has no parent (created orphan, or its parent was
        revoked with ``revoke-orphan``)."""
        return not self.parent

    def expire_time(self) -> datetime | None:
        """When the token expires, as an aware UTC datetime; None if never."""
        if self.expire_at is None:
            return None
        return datetime.fromtimestamp(self.expire_at, tz=UTC)

    def expired(self, now: float) -> bool:
        """True once ``now`` (unix seconds) has reached the expiry time."""
        return self.expire_at is not None and now >= self.expire_at
