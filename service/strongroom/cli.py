"""The ``strongroom`` command, with Vault's flag spelling (``-config``, ``-dev``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strongroom.config import ServerConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strongroom", description="A highly available secrets service with Vault's API"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server", help="run a Strongroom node")
    server.add_argument(
        "-config",
        "--config",
        dest="config",
        help="path to the HCL configuration file (with -dev: settings added to the dev node's, "
        "e.g. audit blocks; storage and listener stay the dev ones)",
    )
    server.add_argument("-dev", "--dev", dest="dev", action="store_true", help="in-memory, initialised, unsealed node")
    server.add_argument(
        "-check",
        "--check",
        dest="check",
        action="store_true",
        help="parse and validate the configuration (storage, listeners, TLS files, audit devices), "
        "print the result and exit: 0 when valid, 1 otherwise; starts nothing",
    )
    server.add_argument("-dev-root-token-id", "--dev-root-token-id", dest="dev_root_token_id", default="")
    server.add_argument(
        "-dev-listen-address", "--dev-listen-address", dest="dev_listen_address", default="127.0.0.1:8200"
    )
    cluster = commands.add_parser(
        "dev-cluster", help="Consul, several nodes and HAProxy on loopback (development only)"
    )
    cluster.add_argument("--dir", required=True, help="working directory: configs, logs, cluster.json (keys!)")
    cluster.add_argument("--nodes", type=int, default=3, help="number of Strongroom nodes (default 3)")
    cluster.add_argument("--consul-servers", type=int, default=1, help="number of Consul servers (default 1)")
    cluster.add_argument("--workers", type=int, default=2, help="gunicorn workers per node (default 2)")
    cluster.add_argument(
        "--base-port",
        type=int,
        default=None,
        help="HAProxy on P, its stats on P+1, nodes from P+2, then Consul (default: free ports)",
    )
    cluster.add_argument("--shares", type=int, default=5, help="unseal key shares (default 5)")
    cluster.add_argument("--threshold", type=int, default=3, help="unseal key threshold (default 3)")
    cluster.add_argument("--timeout", type=float, default=120.0, help="seconds allowed for the start (default 120)")
    cluster.add_argument("--detach", action="store_true", help="return once the cluster is ready, leave it running")
    cluster.add_argument("--stop", action="store_true", help="stop the cluster that DIR/cluster.json describes")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "server":
        return _server(args)
    if args.command == "dev-cluster":
        return _dev_cluster(args)
    return 2


def _server(args: argparse.Namespace) -> int:
    from strongroom import config as config_mod

    if args.dev:
        config = config_mod.dev_config(args.dev_listen_address)
        if args.config:
            try:
                config = _dev_with_file(config, args.config)
            except (config_mod.ConfigError, OSError) as exc:
                print(f"error loading configuration from {args.config}: {exc}", file=sys.stderr)
                return 1
    elif not args.config:
        print("error: -config is required (or -dev)", file=sys.stderr)
        return 2
    else:
        try:
            config = config_mod.load(args.config)
        except config_mod.ConfigError as exc:
            print(f"error loading configuration from {args.config}: {exc}", file=sys.stderr)
            return 1
    for warning in config.warnings:
        print(f"WARNING: {args.config}: {warning}", file=sys.stderr)
    if args.check:
        return _check(config, args.config or "-dev")

    from strongroom.server import nodecore

    if args.dev:
        return nodecore.run(config, dev=True, dev_root_token=args.dev_root_token_id)
    return nodecore.run(config)


def _check(config: ServerConfig, source: str) -> int:
    """``server -config FILE -check``: what ``load`` validates, plus the options of
    the declared audit devices, which the node itself checks only once it is
    active (``AuditBroker.sync_declared``).  Ansible's ``template`` module runs it
    (``validate:``) so a bad file never replaces the live one."""
    from strongroom.core.audit_device import normalize_options, parse_options
    from strongroom.errors import StrongroomError

    for device in config.audit:
        try:
            parse_options(
                normalize_options(device.options_dict),
                allow_prefix=False,
                directory=config.audit_file_directory,
            )
        except StrongroomError as exc:
            print(
                f'error in configuration {source}: audit "{device.type}" "{device.path.rstrip("/")}": {exc}',
                file=sys.stderr,
            )
            return 1
    listeners = ", ".join(
        f"{listener.address} ({'http' if listener.tls_disable else 'https'})" for listener in config.listeners
    )
    storage = config.storage.type + (f" at {config.storage.address}" if config.storage.type == "consul" else "")
    print(
        f"configuration is valid: {source}: storage {storage}, listener {listeners}, "
        f"{len(config.audit)} audit device(s), node_id {config.node_id}, api_addr {config.api_addr}"
    )
    return 0


def _dev_with_file(dev: ServerConfig, path: str) -> ServerConfig:
    """``server -dev -config FILE``, as Vault and OpenBao do it: the file's
    settings (audit blocks, ``unsafe_allow_api_audit_creation``, ...) on the dev
    node's in-memory storage and plain-HTTP listener.  The file holds neither."""
    import dataclasses

    from strongroom import config as config_mod

    with open(path, encoding="utf-8") as f:
        text = f.read()
    dev_blocks = 'storage "inmem" {}\nlistener "tcp" {\n  tls_disable = true\n}\n'
    parsed = config_mod.loads(dev_blocks + text, source=path)
    return dataclasses.replace(
        parsed, storage=dev.storage, listeners=dev.listeners, api_addr=dev.api_addr, node_id=dev.node_id, workers=1
    )


def _dev_cluster(args: argparse.Namespace) -> int:
    from pathlib import Path

    from strongroom import devcluster

    try:
        if args.stop:
            return devcluster.stop_directory(Path(args.dir))
        options = devcluster.Options(
            directory=Path(args.dir),
            nodes=args.nodes,
            consul_servers=args.consul_servers,
            workers=args.workers,
            base_port=args.base_port,
            shares=args.shares,
            threshold=args.threshold,
            timeout=args.timeout,
        )
        return devcluster.run(options, detach=args.detach)
    except (devcluster.DevClusterError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
