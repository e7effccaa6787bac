"""``sys/metrics``: Prometheus text, aggregated over the node's workers.

https://developer.hashicorp.com/vault/api-docs/system/metrics
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from strongroom import metrics
from strongroom.api.logical import client_token
from strongroom.errors import InvalidRequest

if TYPE_CHECKING:
    from strongroom.core.core import Core


class MetricsResource:
    """GET ``sys/metrics?format=prometheus``; a token with ``read`` on
    ``sys/metrics`` unless the listener allows unauthenticated access."""

    def __init__(self, core: Core, unauthenticated: bool) -> None:
        self._core = core
        self._unauthenticated = unauthenticated

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        fmt = req.get_param("format") or ""
        if fmt not in ("prometheus", ""):
            raise InvalidRequest(f"unsupported metrics format: {fmt}")
        if not self._unauthenticated:
            self._core.require_unsealed()
            token = self._core.lookup_token(client_token(req))
            self._core.policies.acl(token.policies).check("sys/metrics", "read", {})
        if fmt != "prometheus" and "prometheus" not in (req.get_header("Accept") or ""):
            raise InvalidRequest("only format=prometheus is supported")
        resp.content_type = "text/plain; version=0.0.4; charset=utf-8"
        resp.data = metrics.render()
        resp.status = falcon.HTTP_200
