"""Route labels are templates of the path tables (``secret/data/:path``), never raw
paths: a flood of random paths, with or without a token, adds no series once
the few labels it can reach exist, under our names and Vault's."""

from __future__ import annotations

import random
import string

from falcon import testing
from prometheus_client import REGISTRY

from strongroom import metrics

REQUESTS = metrics.PREFIX + "http_requests_total"


def call(node, method: str, path: str, token: str = "") -> int:
    environ = testing.create_environ(path=path, method=method, headers={"X-Vault-Token": token} if token else {})
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = status

    b"".join(node.client.app(environ, start_response))
    return int(seen["status"].split()[0])


def series() -> set:
    """Every (name, labels) pair the node exports, Vault's names included."""
    from prometheus_client.parser import text_string_to_metric_families

    text = metrics.render(vault_names=True, cluster="c1").decode()
    return {
        (s.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def random_paths(rng: random.Random, mount: str) -> list[str]:
    word = "".join(rng.choices(string.ascii_letters + string.digits + "-_.", k=rng.randint(1, 16)))
    return [
        f"/v1/{mount}/data/{word}",
        f"/v1/{mount}/data/{word}/{word}",
        f"/v1/{mount}/metadata/{word}",
        f"/v1/{mount}/{word}",
        f"/v1/sys/{word}",
        f"/v1/auth/{word}/login",
        f"/v1/{word}/{word}",
    ]


def flood(node, rng: random.Random, mount: str, rounds: int, token: str = "") -> None:
    for _ in range(rounds):
        for path in random_paths(rng, mount):
            call(node, rng.choice(["GET", "POST"]), path, token)


def test_a_random_path_flood_without_a_token_adds_no_series(unsealed):
    unsealed.request("POST", "sys/mounts/flooded", json={"type": "kv", "options": {"version": "2"}})
    rng = random.Random(12)
    flood(unsealed, rng, "flooded", 30)
    before = series()
    flood(unsealed, rng, "flooded", 150)
    assert series() == before
    routes = {labels["route"] for labels in _request_labels()}
    assert "flooded/" in routes  # resolved to the mount, refused before routing: the mount point alone
    assert not [route for route in routes if route.startswith("flooded/") and route != "flooded/" and ":" not in route]


def test_with_a_token_random_paths_reach_templates_only(unsealed):
    token = unsealed.root_token
    unsealed.request("POST", "sys/mounts/templated", json={"type": "kv", "options": {"version": "2"}})
    rng = random.Random(13)
    flood(unsealed, rng, "templated", 30, token)
    before = series()
    flood(unsealed, rng, "templated", 150, token)
    assert series() == before
    routes = {labels["route"] for labels in _request_labels() if labels["route"].startswith("templated/")}
    assert routes <= {"templated/", "templated/data/:path", "templated/metadata/:path"}, routes
    assert "templated/data/:path" in routes


def _request_labels() -> list[dict]:
    return [
        sample.labels
        for family in REGISTRY.collect()
        if family.name == REQUESTS[: -len("_total")]
        for sample in family.samples
        if sample.name == REQUESTS
    ]
