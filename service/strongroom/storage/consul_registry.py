"""Consul's agent and catalog for the HA layer: the node's liveness check,
service registration with role tags, and watches of the keys behind cached tables.

The liveness check is a TTL check the node core passes every fraction of its
TTL; the HA lock session is bound to it (and to ``serfHealth``), so a node that
dies, hangs or loses Consul loses the lock within about one TTL.  Everything
here is translated into Strongroom errors like the rest of ``storage/``.

https://developer.hashicorp.com/consul/api-docs/agent/check
https://developer.hashicorp.com/consul/api-docs/agent/service
"""

from __future__ import annotations

import json

import consul

from strongroom.storage.consul import OnConsul
from strongroom.storage.consul_errors import consul_errors, error_for_status, raw_response


def _go_duration(seconds: float) -> str:
    return f"{int(round(seconds * 1000))}ms"


class ConsulRegistry:
    """The local agent's checks and services, and prefix watches, on one client."""

    def __init__(self, client: consul.Consul, prefix: str):
        self._client = client
        self._prefix = prefix
        self._address = client.http.base_uri

    @classmethod
    def for_backend(cls, backend: OnConsul) -> ConsulRegistry:
        return cls(backend.client, backend.prefix)

    def _put(self, what: str, path: str, body: dict | None = None) -> None:
        with consul_errors(self._address, what):
            response = self._client.http.put(
                raw_response,
                path,
                data=json.dumps(body) if body is not None else "",
                headers=self._client.prepare_headers(),
            )
        if response.code != 200:
            raise error_for_status(response.code, response.body, what)

    def register_ttl_check(self, check_id: str, name: str, ttl: float) -> None:
        """A node-level TTL check that starts passing (a session cannot bind to a critical check)."""
        self._put(
            "check registration",
            "/v1/agent/check/register",
            {"ID": check_id, "Name": name, "TTL": _go_duration(ttl), "Status": "passing"},
        )

    def pass_check(self, check_id: str) -> None:
        self._put("check heartbeat", f"/v1/agent/check/pass/{check_id}")

    def deregister_check(self, check_id: str) -> None:
        self._put("check deregistration", f"/v1/agent/check/deregister/{check_id}")

    def register_service(
        self, service_id: str, name: str, address: str, port: int, tags: list[str], meta: dict[str, str]
    ) -> None:
        """Register (or re-register with new tags) this node's service instance."""
        self._put(
            "service registration",
            "/v1/agent/service/register",
            {"ID": service_id, "Name": name, "Address": address, "Port": port, "Tags": tags, "Meta": meta},
        )

    def deregister_service(self, service_id: str) -> None:
        self._put("service deregistration", f"/v1/agent/service/deregister/{service_id}")

    def service_instances(self, name: str) -> list[dict]:
        """Every registered instance of ``name`` in the catalog: ID, Address, Port, Tags, Meta."""
        with consul_errors(self._address, "catalog read"):
            _, nodes = self._client.catalog.service(name)
        return [
            {
                "ID": n["ServiceID"],
                "Address": n["ServiceAddress"],
                "Port": n["ServicePort"],
                "Tags": n.get("ServiceTags") or [],
                "Meta": n.get("ServiceMeta") or {},
                "Node": n.get("Node"),
            }
            for n in nodes
        ]

    def wait_prefix(self, prefix: str, index: int, wait: str = "10s") -> tuple[int, dict[str, int]]:
        """Blocking query on every key under ``prefix``: ``(index, {relative key: modify index})``.

        Watching the keys themselves (not a shared "something changed" key) means
        no change can hide another."""
        with consul_errors(self._address, "a watch"):
            new_index, entries = self._client.kv.get(
                self._prefix + prefix, recurse=True, index=index or None, wait=wait
            )
        found = {e["Key"][len(self._prefix) :]: int(e["ModifyIndex"]) for e in entries or []}
        return max(int(new_index or 1), 1), found
