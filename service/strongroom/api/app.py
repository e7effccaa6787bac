"""The Falcon application: ``create_app`` for tests and ``get_app`` for gunicorn.

https://developer.hashicorp.com/vault/api-docs
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import falcon
import falcon.media

import strongroom.api  # noqa: F401  (registers the LIST verb before Falcon loads)
from strongroom import jsoncodec, metrics
from strongroom.api import errors
from strongroom.api.forward import Forwarder
from strongroom.api.json_limits import DEFAULT_LIMITS, JsonLimits
from strongroom.api.logical import LogicalResource
from strongroom.api.sys_health import HealthResource, LeaderResource
from strongroom.api.sys_metrics import MetricsResource
from strongroom.api.sys_seal import InitResource, SealStatusResource, UnsealResource
from strongroom.config import DEFAULT_MAX_REQUEST_SIZE

if TYPE_CHECKING:
    from strongroom.core.core import Core


class NodeHeader:
    """Names the serving node on every response, so routing is observable."""

    def __init__(self, node_id: str):
        self._node_id = node_id

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        # A forwarded answer keeps the name of the node that really served it.
        if not resp.get_header("X-Strongroom-Node"):
            resp.set_header("X-Strongroom-Node", self._node_id)
        resp.set_header("Cache-Control", "no-store")


class RequestMetrics:
    """Count and time every request by route template (mount point, never the raw path)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        route = route_label(req)
        method = metrics.method_label(req.method)
        status = metrics.status_label(resp.status_code)
        metrics.inc(metrics.labelled(metrics.requests_total, route, method, status))
        metrics.observe(
            metrics.labelled(metrics.request_seconds, route, method), time.perf_counter() - req.context.started
        )


#: The ``sys/`` endpoints with a route label of their own: what the system
#: backend (core/system.py) and this app's resources serve.  A new endpoint
#: needs its name here, or it is counted as ``UNMATCHED_ROUTE``.
SYS_ROUTES = frozenset(
    {
        "mounts",
        "auth",
        "policy",
        "audit",
        "audit-hash",
        "key-status",
        "rotate",
        "seal",
        "step-down",
        "ha-status",
        "capabilities",
        "capabilities-self",
        "capabilities-accessor",
        "init",
        "unseal",
        "seal-status",
        "health",
        "leader",
        "metrics",
    }
)
#: Endpoints deeper than one segment, by prefix.
SYS_ROUTE_PREFIXES = ("policies/acl", "internal/ui/mounts")
#: The one label shared by every request that did not resolve to a mount or a
#: known ``sys/`` endpoint: unknown paths, requests refused before routing.
UNMATCHED_ROUTE = "unmatched"


def route_label(req: falcon.Request) -> str:
    """The ``route`` label of a request, from a bounded set whatever the client sends.

    The mount point and the template of the path-table entry that served the
    request (``secret/data/:path``, ``sys/mounts/:path``; mount points are
    bounded by the operators who may mount, templates by the code); the
    mount point alone when the request resolved to a mount but not to an entry
    (refused before routing, or an unknown path in it); a known
    ``sys/<endpoint>``; else ``UNMATCHED_ROUTE``.  Never the raw path: 300
    token-less requests to random ``sys/<x>`` paths once made 3,434 series."""
    lreq = getattr(req.context, "lreq", None)
    if lreq is not None and lreq.mount_point:
        if lreq.route:
            return lreq.mount_point + lreq.route
        if lreq.mount_point == "sys/":
            return sys_route_label(lreq.relative_path)
        return lreq.mount_point
    path = req.path
    if path.startswith("/v1/sys/"):
        return sys_route_label(path[len("/v1/sys/") :])
    return UNMATCHED_ROUTE


def sys_route_label(endpoint: str) -> str:
    """``sys/<endpoint>`` for a path under ``sys/`` that names a known endpoint, else ``UNMATCHED_ROUTE``."""
    head = endpoint.split("/", 1)[0]
    if head in SYS_ROUTES:
        return "sys/" + head
    for prefix in SYS_ROUTE_PREFIXES:
        if endpoint == prefix or endpoint.startswith(prefix + "/"):
            return "sys/" + prefix
    return UNMATCHED_ROUTE


def create_app(
    core: Core,
    *,
    node_id: str = "",
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
    unauthenticated_metrics: bool = False,
    json_limits: JsonLimits = DEFAULT_LIMITS,
    vault_metric_names: bool = True,
    cluster_name: str = "",
    cluster_ca_file: str = "",
) -> falcon.App:
    """Wire the resources around ``core``; ``json_limits`` bound every JSON body (the listener's);
    ``vault_metric_names`` and ``cluster_name`` (as configured, "" when unset) shape ``sys/metrics``;
    ``cluster_ca_file`` verifies the active node's certificate when a request is forwarded."""
    middleware: list[NodeHeader | RequestMetrics] = [NodeHeader(node_id or "strongroom"), RequestMetrics()]
    app = falcon.App(middleware=middleware, cors_enable=False)
    app.req_options.auto_parse_qs_csv = False
    app.req_options.keep_blank_qs_values = True
    app.resp_options.secure_cookies_by_default = True
    # Answers rendered by orjson (jsoncodec: compact, as Vault's Go encoder writes; the standard
    # library where orjson cannot give the same value).
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(dumps=jsoncodec.dumps)
    errors.install(app)
    app.add_route("/v1/sys/init", InitResource(core, max_request_size))
    app.add_route("/v1/sys/unseal", UnsealResource(core, max_request_size))
    app.add_route("/v1/sys/seal-status", SealStatusResource(core))
    app.add_route("/v1/sys/health", HealthResource(core))
    app.add_route("/v1/sys/leader", LeaderResource(core))
    app.add_route("/v1/sys/metrics", MetricsResource(core, unauthenticated_metrics, vault_metric_names, cluster_name))
    app.add_sink(
        LogicalResource(
            core, max_request_size, Forwarder(node_id or "strongroom", verify=cluster_ca_file or True), json_limits
        ),
        prefix="/v1/",
    )
    return app
