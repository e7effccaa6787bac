"""Forwarding requests from a standby to the active node.

https://developer.hashicorp.com/vault/docs/concepts/ha#request-forwarding

The standby replays the original request (method, path, query, headers, the
buffered body) to the active node's ``api_addr`` and relays the answer, adding
``X-Forwarded-For``.  ``X-Vault-No-Request-Forwarding`` asks for a 307 to the
active node instead.  A request already forwarded once is never forwarded again
(``X-Strongroom-Forwarded``), so two nodes that disagree about the leader during
a failover cannot bounce a request between them.

The mark is trusted for that alone: it can only stop a forward.  HAProxy
deletes a client's copy (``strongroom.haproxy.INTERNAL_REQUEST_HEADERS``); a
client that reaches a standby directly and sends it gets a 503 for its own
request instead of a forward, and nothing else changes (the active node
ignores it; local reads and the 307 of ``X-Vault-No-Request-Forwarding`` do
not look at it).  tests/cluster/test_routing.py holds both to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from strongroom import metrics
from strongroom.errors import StandbyNoLeader

if TYPE_CHECKING:
    import requests

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
FORWARDED_MARK = "X-Strongroom-Forwarded"


class Forwarder:
    """One HTTP connection pool per worker to the active node, made at the first
    forward: requests (and urllib3 under it) add about 5 MiB to a process, and
    the workers of an active node never forward."""

    def __init__(self, node_id: str, timeout: float = 60.0, verify: bool | str = True):
        self._session: requests.Session | None = None
        self._node_id = node_id
        self._timeout = timeout
        self._verify = verify

    def forward(
        self, req: falcon.Request, resp: falcon.Response, raw_body: bytes, leader_address: str, reason: str
    ) -> None:
        """Replay ``req`` on the active node and copy its answer into ``resp``."""
        if not leader_address or req.get_header(FORWARDED_MARK):
            metrics.inc(metrics.labelled(metrics.forward_errors_total, "loop" if leader_address else "no_leader"))
            raise StandbyNoLeader()
        headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP}
        forwarded_for = req.get_header("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{forwarded_for}, {req.remote_addr}" if forwarded_for else (req.remote_addr or "")
        headers[FORWARDED_MARK] = self._node_id
        url = leader_address.rstrip("/") + req.relative_uri
        import requests  # here, not at the top: see the class docstring

        if self._session is None:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._session = session
        try:
            answer = self._session.request(
                req.method,
                url,
                data=raw_body or None,
                headers=headers,
                timeout=self._timeout,
                verify=self._verify,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            metrics.inc(metrics.labelled(metrics.forward_errors_total, forward_error_reason(exc)))
            raise StandbyNoLeader("error forwarding request to the active node") from None
        metrics.inc(metrics.labelled(metrics.forwarded_total, reason))
        resp.status = falcon.code_to_http_status(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-encoding":
                resp.set_header(name, value)
        resp.data = answer.content

    @staticmethod
    def redirect(req: falcon.Request, resp: falcon.Response, leader_address: str) -> None:
        """307 to the same request on the active node."""
        if not leader_address:
            raise StandbyNoLeader()
        resp.status = falcon.HTTP_307
        resp.set_header("Location", leader_address.rstrip("/") + req.relative_uri)


def forward_error_reason(exc: requests.RequestException) -> str:
    """The ``reason`` label of a failed forward (a fixed set): ``timeout``,
    ``connection`` (refused, reset, unreachable), ``tls`` or ``other``."""
    import requests  # loaded already: only called with one of its errors

    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls"
    if isinstance(exc, requests.ConnectionError):
        return "connection"
    return "other"
