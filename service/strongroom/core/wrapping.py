"""Response wrapping: ``X-Vault-Wrap-TTL`` and ``sys/wrapping/wrap|unwrap|lookup|rewrap``.

https://developer.hashicorp.com/vault/docs/concepts/response-wrapping
https://developer.hashicorp.com/vault/api-docs/system/wrapping-wrap

A request carrying ``X-Vault-Wrap-TTL`` runs as usual; its response is then
stored, encrypted by the barrier at ``sys/wrapping/response/<salted token id>``,
and the client gets only ``wrap_info``: a new single-use token (policy
``response-wrapping``, ``num_uses`` 1, the wrap TTL, no parent) whose
``creation_path`` is the path that produced the response.  Whoever unwraps
gets the original response exactly once: the stored response is removed with
a check on its modify index, so of two racing unwraps one wins and the other
is told the token is not valid.  The token is revoked on the way.

Where Vault keeps the response in the wrapping token's cubbyhole, Strongroom
keeps it beside the token records; it is readable only through the token.
A response whose token expired unused stays stored (encrypted, unreachable)
until ``tidy_responses`` removes it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strongroom.durations import parse_duration_second, whole_seconds
from strongroom.errors import InvalidRequest, WriteConflict
from strongroom.sdk import logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response
from strongroom.storage import TxnOp
from strongroom.timefmt import rfc3339

if TYPE_CHECKING:
    from strongroom.auth.token_entry import TokenEntry
    from strongroom.core.core import Core

WRAPPING_POLICY = "response-wrapping"
RESPONSES_PREFIX = "sys/wrapping/response/"
#: Vault's built-in policy of a wrapping token (vault/policy_store.go, responseWrappingPolicy).
WRAPPING_POLICY_TEXT = """
path "cubbyhole/response" {
    capabilities = ["create", "read"]
}
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
"""
INVALID_TOKEN = "wrapping token is not valid or does not exist"


def wrap_ttl_seconds(text: str) -> int:
    """``X-Vault-Wrap-TTL`` as Vault reads it (``300``, ``5m``, ``1h``); 0: not wrapping."""
    text = (text or "").strip()
    if not text:
        return 0
    try:
        seconds = whole_seconds(parse_duration_second(text))
    except ValueError as exc:
        raise InvalidRequest(f"error parsing X-Vault-Wrap-TTL header: {exc}") from None
    if seconds < 0:
        raise InvalidRequest("requested wrap ttl cannot be negative")
    return seconds


class Wrapping:
    """Wrap a response, and the four ``sys/wrapping/*`` operations, over the core's
    token store and barrier."""

    def __init__(self, core: Core) -> None:
        self._core = core

    # --- wrapping a response ------------------------------------------------------

    def wrap(self, req: Request, resp: Response, ttl: int, creation_path: str = "") -> Response:
        """Store ``resp`` and answer with the ``wrap_info`` of a new wrapping token."""
        core = self._core
        path = creation_path or req.path
        token_id, entry = core.tokens.create(
            policies=[WRAPPING_POLICY],
            add_default=False,
            path=path,
            display_name="response-wrapping",
            num_uses=1,
            ttl=ttl,
            renewable=False,
        )
        stored = {
            "data": resp.raw if resp.raw is not None else resp.data,
            "auth": resp.auth,
            "lease_id": resp.lease_id,
            "lease_duration": resp.lease_duration,
            "renewable": resp.renewable,
            "warnings": resp.warnings,
        }
        core.barrier.put(RESPONSES_PREFIX + entry.salted_id, json.dumps(stored).encode())
        wrap_info = {
            "token": token_id,
            "accessor": entry.accessor,
            "ttl": ttl,
            "creation_time": rfc3339(datetime.fromtimestamp(entry.issue_time, UTC)),
            "creation_path": path,
        }
        if resp.auth and resp.auth.get("accessor"):
            wrap_info["wrapped_accessor"] = resp.auth["accessor"]
        return Response(wrap_info=wrap_info, index=resp.index, headers=resp.headers)

    # --- sys/wrapping/* -------------------------------------------------------------

    def _wrapping_token(self, req: Request) -> TokenEntry:
        """The wrapping token a request names: ``token`` in the body, else the
        request's own token; a token that is not a live wrapping token is refused."""
        named = req.data.get("token") if isinstance(req.data, dict) else None
        if named is not None and not isinstance(named, str):
            raise InvalidRequest("'token' must be a string")
        if named:
            entry = self._core.tokens.lookup(named.strip())
        elif req.token is not None:
            entry = req.token
        else:
            entry = self._core.tokens.lookup(req.client_token) if req.client_token else None
        if entry is None or entry.policies != [WRAPPING_POLICY]:
            raise InvalidRequest(INVALID_TOKEN)
        return entry

    def check_token(self, req: Request) -> None:
        """InvalidRequest unless the request names a live wrapping token (its body's
        ``token``, else its own): what Vault checks before the client token."""
        self._wrapping_token(req)

    def _take(self, entry: TokenEntry) -> dict[str, Any]:
        """Remove and return the stored response of ``entry`` (once), revoking the token."""
        barrier = self._core.barrier
        key = RESPONSES_PREFIX + entry.salted_id
        raw, index = barrier.get_with_index(key)
        if raw is None:
            raise InvalidRequest(INVALID_TOKEN)
        try:
            barrier.txn([TxnOp("check-index", key, index=index), TxnOp("delete", key)])
        except WriteConflict:
            raise InvalidRequest(INVALID_TOKEN) from None
        if entry.id:
            self._core.tokens.revoke(entry.id)
        else:
            self._core.tokens.revoke_accessor(entry.accessor)
        stored: dict[str, Any] = json.loads(raw)
        return stored

    def unwrap(self, req: Request) -> Response:
        stored = self._take(self._wrapping_token(req))
        return Response(
            data=stored.get("data"),
            auth=stored.get("auth"),
            lease_id=stored.get("lease_id") or "",
            lease_duration=stored.get("lease_duration") or 0,
            renewable=bool(stored.get("renewable")),
            warnings=list(stored.get("warnings") or []),
        )

    def lookup(self, req: Request) -> Response:
        entry = self._wrapping_token(req)
        return Response(
            data={
                "creation_path": entry.path,
                "creation_time": rfc3339(datetime.fromtimestamp(entry.issue_time, UTC)),
                "creation_ttl": entry.ttl,
            }
        )

    def rewrap(self, req: Request) -> Response:
        entry = self._wrapping_token(req)
        path, ttl = entry.path, entry.ttl
        stored = self._take(entry)
        original = Response(
            raw=None,
            data=stored.get("data"),
            auth=stored.get("auth"),
            lease_id=stored.get("lease_id") or "",
            lease_duration=stored.get("lease_duration") or 0,
            renewable=bool(stored.get("renewable")),
            warnings=list(stored.get("warnings") or []),
        )
        return self.wrap(req, original, ttl, creation_path=path)

    @staticmethod
    def wrap_data(req: Request) -> Response:
        """``sys/wrapping/wrap``: the request's own data as the response, which the
        core then wraps like any other (a wrap TTL is required)."""
        if not wrap_ttl_seconds(req.wrap_ttl):
            raise InvalidRequest("endpoint requires response wrapping to be used")
        return Response(data=dict(req.data or {}))

    def tidy_responses(self) -> int:
        """Remove stored responses whose wrapping token is gone (expired unused); returns how many."""
        barrier = self._core.barrier
        removed = 0
        live = {entry.salted_id for entry in self._core.tokens.live_entries()}
        for name in barrier.list(RESPONSES_PREFIX):
            if name not in live:
                barrier.delete(RESPONSES_PREFIX + name)
                removed += 1
        return removed


def wrapping_paths(wrapping: Wrapping) -> list[Path]:
    """``sys/wrapping/*``.  ``wrap`` needs ``X-Vault-Wrap-TTL``: the core wraps its
    answer like any other (``Core.handle``); ``rewrap`` answers with a wrapping token
    already, which the core leaves as it is."""

    return [
        Path(
            "wrapping/wrap",
            {logical.UPDATE: wrapping.wrap_data},
            synopsis="Response-wraps an arbitrary JSON object.",
            description="Send any JSON object with X-Vault-Wrap-TTL; the answer is a wrapping token for it.",
        ),
        Path(
            "wrapping/unwrap",
            {logical.UPDATE: wrapping.unwrap},
            synopsis="Unwraps a response-wrapped token.",
            description="With 'token' (any caller allowed to unwrap), or as the wrapping token itself: "
            "the wrapped response, once.",
        ),
        Path(
            "wrapping/lookup",
            {logical.UPDATE: wrapping.lookup, logical.READ: wrapping.lookup},
            synopsis="Looks up the properties of a response-wrapped token.",
            description="'token': its creation path, time and TTL (no token needed to ask).",
        ),
        Path(
            "wrapping/rewrap",
            {logical.UPDATE: wrapping.rewrap},
            synopsis="Rotates a response-wrapped token.",
            description="'token': a new wrapping token for the same response; the old one is revoked.",
        ),
    ]
