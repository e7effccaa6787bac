"""The WSGI entry point gunicorn calls in each worker: ``strongroom.server.wsgi:get_app()``.

Reads what the node core left in the environment: ``STRONGROOM_CONFIG_JSON``
(the parsed configuration, ``config.to_json``), ``STRONGROOM_DEV`` (dev mode:
initialise, unseal and mount ``secret/`` at start), and ``STRONGROOM_NODE_SOCKET`` (the node core's socket, absent for
single-process in-memory nodes) with ``STRONGROOM_CACHE_TABLE`` (the node's
``CoherenceTable``, see storage/cache.py).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import strongroom.api  # noqa: F401  (LIST before Falcon)
from strongroom import config as config_mod
from strongroom.api.app import create_app
from strongroom.api.json_limits import JsonLimits
from strongroom.auth.methods import AUTH_TYPES
from strongroom.barrier.keyring import Keyring
from strongroom.core.core import Core, utcnow
from strongroom.core.seal import SealManager
from strongroom.engines import ENGINE_TYPES
from strongroom.server.build import core_config, make_backend

if TYPE_CHECKING:
    import falcon  # at run time only after strongroom.api, which registers the LIST verb first


def load_config() -> config_mod.ServerConfig:
    if os.environ.get("STRONGROOM_CONFIG_JSON"):
        return config_mod.from_json(os.environ["STRONGROOM_CONFIG_JSON"])
    return config_mod.dev_config(os.environ.get("STRONGROOM_DEV_LISTEN", "127.0.0.1:8200"))


def get_app() -> falcon.App:
    """Build this worker's core and Falcon app."""
    from strongroom import metrics
    from strongroom.core.seal import VERSION

    config = load_config()
    metrics.set_build_info(VERSION)
    listener = config.listeners[0]
    socket_path = os.environ.get("STRONGROOM_NODE_SOCKET")
    if socket_path:
        from strongroom.server.nodelink import NodeLink
        from strongroom.storage.coherence import CoherenceTable

        link = NodeLink(socket_path)
        from strongroom.core.policy_parser import use_hcl_parser

        use_hcl_parser(link.parse_hcl)  # the node core parses policies' HCL: no worker carries lark
        # Opened here, in the worker: flock only excludes other open files.
        table = CoherenceTable(os.environ["STRONGROOM_CACHE_TABLE"])
        backend = make_backend(
            config, fence=link.fence, on_lock_lost=link.lock_lost, cache_table=table, cache_size=config.cache_size
        )
        core = Core(
            backend,
            link,
            backends=ENGINE_TYPES,
            auth_backends=AUTH_TYPES,
            config=core_config(config),
            notify=link.notify,
        )
        link.on_invalidate = core.invalidate
        # A seal reaches the barrier (and the token store drops what it decoded) at once, not at the next request.
        link.on_keyring = core.sync_keyring
    else:
        backend = make_backend(config)
        metrics.initialize_labels()  # no node core here to do it

        def on_change(keyring: Keyring | None) -> None:
            single_node_gauges(keyring)
            if keyring is not None:  # unsealed is active here: the declared audit devices go in first
                core.sync_declared_audit()

        seal = SealManager(
            backend, utcnow, cluster_name=config.cluster_name, storage_type=config.storage.type, on_change=on_change
        )
        core = Core(backend, seal, backends=ENGINE_TYPES, auth_backends=AUTH_TYPES, config=core_config(config))
        if os.environ.get("STRONGROOM_DEV"):
            dev_initialize(core, os.environ.get("STRONGROOM_DEV_ROOT_TOKEN", ""), config.api_addr)
    return create_app(
        core,
        node_id=config.node_id,
        max_request_size=listener.max_request_size,
        unauthenticated_metrics=bool(listener.unauthenticated_metrics_access),
        json_limits=JsonLimits.of(listener),
        vault_metric_names=config.telemetry.vault_metric_names,
        cluster_name=config.cluster_name,
        cluster_ca_file=config.cluster_ca_file,
    )


#: Whether the single-process node was unsealed at the last keyring change.
_single_node_unsealed = [0]


def single_node_gauges(keyring: Keyring | None) -> None:
    """Without a node core (in-memory nodes) the one worker reports the node's state."""
    from strongroom import metrics

    unsealed = 1 if keyring is not None else 0
    if unsealed != _single_node_unsealed[0]:  # a rotation keeps the node unsealed: no event
        _single_node_unsealed[0] = unsealed
        metrics.inc(metrics.labelled(metrics.seal_events_total, "unseal" if unsealed else "seal"))
        if unsealed:
            metrics.core_initialized.set(1)
    metrics.core_unsealed.set(unsealed)
    metrics.core_active.set(unsealed)


def dev_initialize(core: Core, root_token_id: str, api_addr: str) -> None:
    """What ``vault server -dev`` does: initialise with one share, unseal, mount
    KV v2 at ``secret/``, and print how to use it."""
    from strongroom.sdk.logical import Request

    result = core.initialize(1, 1, root_token_id=root_token_id)
    core.seal.unseal(result["keys_base64"][0])
    core.handle(
        Request(
            operation="update",
            path="sys/mounts/secret",
            client_token=result["root_token"],
            data={"type": "kv", "options": {"version": "2"}, "description": "key/value secret storage"},
        )
    )
    print(
        "WARNING! dev mode is enabled! In this mode, Strongroom runs entirely in-memory\n"
        "and starts unsealed with a single unseal key. Never use it in production.\n\n"
        f"    $ export VAULT_ADDR='{api_addr}'\n\n"
        f"Unseal Key: {result['keys_base64'][0]}\n"
        f"Root Token: {result['root_token']}\n",
        file=sys.stderr,
        flush=True,
    )
