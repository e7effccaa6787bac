"""Usage gauges: token counts and leases, computed on the active node now and then.

https://developer.hashicorp.com/vault/docs/internals/telemetry/metrics/core-system#token-count

Vault's active node walks its token store every ``telemetry.usage_gauge_period``
(10 minutes by default, ``none`` turns it off) and sets ``token.count``,
``token.count.by_policy``, ``.by_ttl`` and ``.by_auth``; a gauge with more label
values than ``maximum_gauge_cardinality`` keeps the largest ones.  Strongroom's
node core does the same (``server/nodecore.py`` reads the tokens), and
``summarize`` turns what it read into one snapshot, which ``publish`` writes
beside the workers' metric files; whichever worker renders ``sys/metrics``
reads it back (``current``).  A node that stops being active withdraws its
snapshot, so only the active node reports usage, as in Vault.

``expire_num_leases`` counts Strongroom's leases: service tokens with a TTL
(Strongroom's engines issue no secret leases; root tokens and other tokens
that never expire have none).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from strongroom import metrics

SNAPSHOT_FILE = "usage.json"


class TokenLike(Protocol):
    """What ``summarize`` reads of a token (``auth.token_entry.TokenEntry``)."""

    policies: list[str]
    path: str
    ttl: int
    expire_at: float | None


def summarize(
    tokens: Iterable[TokenLike], auth_method_of: Callable[[str], str], max_cardinality: int
) -> dict[str, Any]:
    """The usage snapshot of ``tokens`` (the live service tokens).

    ``auth_method_of(path)`` names the auth method type a token came from by
    its creation path (``auth/userpass/login/alice`` -> ``userpass``).  A
    token that never expires (TTL 0) falls in the ``+Inf`` TTL bucket, as Vault
    counts it."""
    count = leases = 0
    by_policy: dict[str, int] = {}
    by_ttl: dict[str, int] = {}
    by_auth: dict[str, int] = {}
    for token in tokens:
        count += 1
        if token.expire_at is not None:
            leases += 1
        for policy in token.policies:
            by_policy[policy] = by_policy.get(policy, 0) + 1
        bucket = metrics.ttl_bucket(token.ttl) if token.ttl else metrics.OVERFLOW_BUCKET
        by_ttl[bucket] = by_ttl.get(bucket, 0) + 1
        method = auth_method_of(token.path)
        by_auth[method] = by_auth.get(method, 0) + 1
    return {
        "token_count": count,
        "num_leases": leases,
        "by_policy": bounded(by_policy, max_cardinality),
        "by_ttl": bounded(by_ttl, max_cardinality),
        "by_auth": bounded(by_auth, max_cardinality),
    }


def bounded(counts: dict[str, int], max_cardinality: int) -> dict[str, int]:
    """At most ``max_cardinality`` label values: the largest counts (ties by name), as Vault keeps them."""
    if len(counts) <= max_cardinality:
        return counts
    kept = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:max_cardinality]
    return dict(kept)


#: The snapshot of a single-process node (no metrics directory).
_in_memory: dict[str, Any] | None = None


def _path() -> str | None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return os.path.join(directory, SNAPSHOT_FILE) if directory else None


def publish(snapshot: dict[str, Any] | None) -> None:
    """Make ``snapshot`` the node's usage gauges (None withdraws them), atomically."""
    global _in_memory
    path = _path()
    if path is None:
        _in_memory = snapshot
        return
    if snapshot is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".usage-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(snapshot, out)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def current() -> dict[str, Any] | None:
    """The node's usage snapshot, None when this node publishes none."""
    path = _path()
    if path is None:
        return _in_memory
    try:
        with open(path) as source:
            snapshot: dict[str, Any] = json.load(source)
            return snapshot
    except (FileNotFoundError, ValueError):
        return None


def families(snapshot: dict[str, Any] | None) -> Iterator[Metric]:
    """The ``strongroom_token_count*`` and ``strongroom_expire_num_leases`` gauges of ``snapshot``."""
    if snapshot is None:
        return
    p = metrics.PREFIX
    yield GaugeMetricFamily(p + "token_count", "Live service tokens (active node)", value=snapshot["token_count"])
    for name, label, key in (
        ("token_count_by_policy", "policy", "by_policy"),
        ("token_count_by_ttl", "creation_ttl", "by_ttl"),
        ("token_count_by_auth", "auth_method", "by_auth"),
    ):
        family = GaugeMetricFamily(p + name, f"Live service tokens by {label} (active node)", labels=[label])
        for value, count in sorted(snapshot[key].items()):
            family.add_metric([value], count)
        yield family
    yield GaugeMetricFamily(
        p + "expire_num_leases", "Leases: service tokens with a TTL (active node)", value=snapshot["num_leases"]
    )
