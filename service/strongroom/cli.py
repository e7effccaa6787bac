"""The ``strongroom`` command, with Vault's flag spelling (``-config``, ``-dev``)."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="strongroom", description="A highly available secrets service with Vault's API")
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server", help="run a Strongroom node")
    server.add_argument("-config", "--config", dest="config", help="path to the HCL configuration file")
    server.add_argument("-dev", "--dev", dest="dev", action="store_true", help="in-memory, initialised, unsealed node")
    server.add_argument("-dev-root-token-id", "--dev-root-token-id", dest="dev_root_token_id", default="")
    server.add_argument("-dev-listen-address", "--dev-listen-address", dest="dev_listen_address",
                        default="127.0.0.1:8200")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "server":
        return _server(args)
    return 2


def _server(args) -> int:
    from strongroom import config as config_mod
    from strongroom.server import nodecore

    if args.dev:
        config = config_mod.dev_config(args.dev_listen_address)
        return nodecore.run(config, dev=True, dev_root_token=args.dev_root_token_id)
    if not args.config:
        print("error: -config is required (or -dev)", file=sys.stderr)
        return 2
    try:
        config = config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        print(f"error loading configuration from {args.config}: {exc}", file=sys.stderr)
        return 1
    return nodecore.run(config, config_path=args.config)


if __name__ == "__main__":
    sys.exit(main())
