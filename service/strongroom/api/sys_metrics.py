"""``sys/metrics``: Prometheus text, aggregated over the node's workers.

https://developer.hashicorp.com/vault/api-docs/system/metrics
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from strongroom import metrics, metrics_vault
from strongroom.api.logical import client_token
from strongroom.errors import InvalidRequest, StrongroomError

if TYPE_CHECKING:
    from strongroom.core.core import Core


class MetricsResource:
    """GET ``sys/metrics?format=prometheus``; a token with ``read`` on
    ``sys/metrics`` unless the listener allows unauthenticated access.

    With ``vault_names`` (``telemetry.vault_metric_names``, on by default)
    Vault's names follow Strongroom's, derived from them at render time
    (``strongroom.metrics_vault``); their ``cluster`` label is ``cluster_name``
    as configured, else ``vault-cluster-`` and the start of the cluster id."""

    def __init__(self, core: Core, unauthenticated: bool, vault_names: bool = True, cluster_name: str = "") -> None:
        self._core = core
        self._unauthenticated = unauthenticated
        self._vault_names = vault_names
        self._cluster = cluster_name

    def _cluster_label(self) -> str:
        if not self._cluster and self._vault_names:
            # The cluster id never changes once written: found once, kept.
            self._cluster = metrics_vault.cluster_label("", self._core.health().get("cluster_id", ""))
        return self._cluster

    def _mount_points(self) -> list[str]:
        """Every mount's path (``secret/``, ``auth/token/``) for Vault's route timers; none while sealed."""
        if not self._vault_names:
            return []
        try:
            return [*self._core.mounts.entries(), *("auth/" + path for path in self._core.auth_mounts.entries())]
        except StrongroomError:
            return []

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
        resp.data = metrics.render(self._vault_names, self._cluster_label(), self._mount_points())
        resp.status = falcon.HTTP_200
