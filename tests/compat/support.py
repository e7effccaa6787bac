"""Small helpers shared by the compat tests (fixtures are in conftest.py)."""

from __future__ import annotations

import hvac

# The compat node's listener max_request_size: small enough that a test can
# exceed it cheaply, large enough for every other request.
MAX_REQUEST_SIZE = 64 * 1024


def read_kv2(client: hvac.Client, path: str, mount: str, version: int | None = None) -> dict:
    """The data of a KV v2 secret version through hvac (a deleted version raises InvalidPath)."""
    response = client.secrets.kv.v2.read_secret_version(path, version=version, mount_point=mount,
                                                         raise_on_deleted_version=True)
    return response["data"]["data"]
