"""Small helpers shared by the compat tests (fixtures are in conftest.py)."""

from __future__ import annotations

import hvac
import requests

from tests.helpers.procs import wait_until

# The compat node's listener max_request_size: small enough that a test can
# exceed it cheaply, large enough for every other request.
MAX_REQUEST_SIZE = 64 * 1024


def read_kv2(client: hvac.Client, path: str, mount: str, version: int | None = None) -> dict:
    """The data of a KV v2 secret version through hvac (a deleted version raises InvalidPath)."""
    response = client.secrets.kv.v2.read_secret_version(
        path, version=version, mount_point=mount, raise_on_deleted_version=True
    )
    return response["data"]["data"]


def wait_active(url: str, timeout: float = 15.0) -> None:
    """Block until ``sys/health`` answers 200: initialised, unsealed and active
    (as in Vault, an unsealed HA node is a standby until it holds the lock)."""
    wait_until(
        lambda: requests.get(f"{url}/v1/sys/health", timeout=2).status_code == 200,
        timeout,
        f"{url} to become active",
        interval=0.05,
    )
