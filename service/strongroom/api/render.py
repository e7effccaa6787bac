"""Rendering a logical response in Vault's body shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

if TYPE_CHECKING:
    from strongroom.sdk.logical import Request, Response


def render_response(resp: falcon.Response, lreq: Request, lresp: Response) -> None:
    """Vault's response envelope (``http/logical.go`` respondLogical)."""
    if lresp.index:
        resp.set_header("X-Vault-Index", str(lresp.index))
    for name, value in lresp.headers.items():
        resp.set_header(name, value)
    if lresp.raw is not None:
        resp.status = falcon.code_to_http_status(lresp.status or 200)
        resp.media = lresp.raw
        return
    has_body = lresp.data is not None or lresp.auth is not None or bool(lresp.warnings) or lresp.wrap_info is not None
    status = lresp.status or (200 if has_body else 204)
    if status == 404 and not has_body:
        resp.status = falcon.HTTP_404
        if lreq.operation != "patch":  # Vault answers a PATCH of nothing with an empty 404
            resp.media = {"errors": []}
        return
    resp.status = falcon.code_to_http_status(status)
    if status == 204 or not has_body:
        return
    body = {
        # A wrapped answer carries no request id, as OpenBao 2.7.2 answers.
        "request_id": "" if lresp.wrap_info is not None else lreq.request_id,
        "lease_id": lresp.lease_id,
        "renewable": lresp.renewable,
        "lease_duration": lresp.lease_duration,
        "data": lresp.data,
        "wrap_info": lresp.wrap_info,
        "warnings": lresp.warnings or None,
        "auth": lresp.auth,
    }
    if lresp.data_at_top_level and lresp.data:
        body = {**lresp.data, **body}
    resp.media = body
