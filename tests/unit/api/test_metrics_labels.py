"""Request metrics are labelled from fixed sets, whatever a client sends
(issue 10, finding 5): route labels are mount points and known ``sys/``
endpoints, one shared label for everything else; unknown methods share one
method label; status codes are bounded too."""

from __future__ import annotations

import random
import string

from falcon import testing
from prometheus_client import REGISTRY

from strongroom import metrics
from strongroom.api.app import SYS_ROUTE_PREFIXES, SYS_ROUTES, UNMATCHED_ROUTE

REQUESTS = metrics.PREFIX + "http_requests_total"


def call(node, method: str, path: str, token: str = "") -> int:
    """One request straight into the WSGI app: Falcon's TestClient runs wsgiref's
    validator, which refuses the method names a hostile client sends."""
    environ = testing.create_environ(path=path, method=method, headers={"X-Vault-Token": token} if token else {})
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = status

    b"".join(node.client.app(environ, start_response))
    return int(seen["status"].split()[0])


def exposition_lines() -> int:
    return len(metrics.render().decode().splitlines())


def request_labels() -> list[dict]:
    return [
        sample.labels
        for family in REGISTRY.collect()
        if family.name == REQUESTS[: -len("_total")]
        for sample in family.samples
        if sample.name == REQUESTS
    ]


def hostile_request(rng: random.Random) -> tuple[str, str]:
    word = "".join(rng.choices(string.ascii_letters + string.digits + "-_.", k=rng.randint(1, 12)))
    method = rng.choice(
        [
            "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 10))),  # FOOBAR, PROPFIND...
            "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 8))),
            rng.choice(sorted(metrics.KNOWN_METHODS)),
        ]
    )
    path = rng.choice(
        [
            f"/v1/sys/q{word}",
            f"/v1/sys/q{word}/{word}",
            f"/v1/q{word}/{word}",
            f"/v1/auth/q{word}/login",
            f"/q{word}",
            f"/v1/sys/internal/q{word}",
            f"/v1/sys/policies/q{word}",
        ]
    )
    return method, path


def test_random_paths_and_methods_add_a_bounded_number_of_series(unsealed):
    rng = random.Random(10)
    before = exposition_lines()
    for _ in range(100):
        call(unsealed, *hostile_request(rng))
    after_100 = exposition_lines()
    for _ in range(400):
        call(unsealed, *hostile_request(rng))
    after_500 = exposition_lines()
    # The labels they can take: one route, the known methods and OTHER, a few
    # statuses (403, 404, 405...).  A counter series is 2 lines (_total,
    # _created), a histogram series 17 (14 buckets, _count, _sum, _created).
    methods, statuses = len(metrics.KNOWN_METHODS) + 1, 6
    bound = methods * statuses * 2 + methods * 17
    assert after_500 - before <= bound, (before, after_100, after_500)
    # 400 more requests, with paths and methods never seen, add (almost) nothing.
    assert after_500 - after_100 <= methods * 2, (after_100, after_500)
    for labels in request_labels():
        assert labels["method"] in metrics.KNOWN_METHODS | {metrics.OTHER_METHOD}, labels
        assert labels["status"] in {str(code) for code in metrics.KNOWN_STATUSES} | {
            "2xx",
            "3xx",
            "4xx",
            "5xx",
            "other",
        }
        route = labels["route"]
        assert route == UNMATCHED_ROUTE or not route.startswith("sys/q") and "/q" not in route, labels


def test_unknown_requests_share_one_route_and_one_method_label(unsealed):
    assert call(unsealed, "PROPFIND", "/v1/sys/qwerty-labels") in (403, 404, 405)
    assert call(unsealed, "GET", "/v1/qnomount-labels/x", token=unsealed.root_token) == 404
    assert REGISTRY.get_sample_value(REQUESTS, {"route": UNMATCHED_ROUTE, "method": "OTHER", "status": "405"}) >= 1
    assert REGISTRY.get_sample_value(REQUESTS, {"route": UNMATCHED_ROUTE, "method": "GET", "status": "404"}) >= 1
    assert not [labels for labels in request_labels() if "qwerty" in labels["route"] or "qnomount" in labels["route"]]


def test_known_endpoints_and_mounts_keep_their_own_labels(unsealed):
    token = unsealed.root_token
    unsealed.request("POST", "sys/mounts/labelled", json={"type": "kv", "options": {"version": "2"}})
    unsealed.request("POST", "labelled/data/a/b/c", json={"data": {"v": "1"}})
    unsealed.request("PUT", "sys/policies/acl/reader", json={"policy": 'path "x" { capabilities = ["read"] }'})
    expected = {
        # Route templates: the mount point and the matched path-table entry, never the raw path.
        ("GET", "/v1/labelled/data/a/b/c"): "labelled/data/:path",
        ("GET", "/v1/labelled/metadata/a"): "labelled/metadata/:path",
        ("GET", "/v1/sys/mounts"): "sys/mounts",
        ("GET", "/v1/sys/mounts/labelled/tune"): "sys/mounts/:path/tune",
        ("GET", "/v1/sys/policies/acl/reader"): "sys/policies/acl/:name",
        ("GET", "/v1/sys/internal/ui/mounts/labelled"): "sys/internal/ui/mounts/:path",
        ("GET", "/v1/sys/health"): "sys/health",
        ("GET", "/v1/sys/seal-status"): "sys/seal-status",
        ("GET", "/v1/auth/token/lookup-self"): "auth/token/lookup-self",
        # Resolved to a mount, refused before routing (no token): the mount point alone.
        ("GET", "/v1/labelled/data/x-no-token"): "labelled/",
    }
    for (method, path), route in expected.items():
        status = call(unsealed, method, path, token="" if "no-token" in path else token)
        assert REGISTRY.get_sample_value(REQUESTS, {"route": route, "method": method, "status": str(status)}), (
            path,
            route,
            status,
        )
    for label in [f"sys/{name}" for name in SYS_ROUTES] + [f"sys/{prefix}" for prefix in SYS_ROUTE_PREFIXES]:
        assert "/q" not in label


def test_method_and_status_labels_come_from_fixed_sets():
    assert metrics.method_label("LIST") == "LIST" and metrics.method_label("PATCH") == "PATCH"
    assert {metrics.method_label(m) for m in ("PROPFIND", "get", "X" * 50, "")} == {"OTHER"}
    assert [metrics.status_label(c) for c in (200, 404, 429, 472, 473, 503)] == [
        "200",
        "404",
        "429",
        "472",
        "473",
        "503",
    ]
    assert [metrics.status_label(c) for c in (299, 474, 599, 99, 1000)] == ["2xx", "4xx", "5xx", "other", "other"]
    assert len({metrics.status_label(c) for c in range(-10, 100_000)}) <= len(metrics.KNOWN_STATUSES) + 6
