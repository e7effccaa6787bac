"""The parts of hvac's ``tests/utils/__init__.py`` (v2.4.0) that the vendored tests use,
adapted to Strongroom: plain HTTP clients, the ``bao`` CLI (a fork of ``vault``)
for decoding a generated root token, and the Vault version Strongroom answers as.

Copyright hvac contributors, Apache License 2.0 (tests/compat/hvac_suite/LICENSE).
"""

from __future__ import annotations

import base64
import json
import operator
import os
import subprocess
from collections.abc import Callable

import requests
from hvac import Client
from packaging.version import Version

from tests.compat.hvac_suite.utils import server_manager
from tests.helpers.procs import openbao_binary

# hvac's harness asks `vault -version`; Strongroom implements the open Vault API
# that OpenBao 2.x forked from Vault 1.14, and is no Enterprise server.
STRONGROOM_VAULT_API_VERSION = "1.14.0"


def get_installed_vault_version() -> str:
    return STRONGROOM_VAULT_API_VERSION


def is_enterprise() -> bool:
    return False


def if_vault_version(supported_version: str, comparison: Callable[[Version, Version], bool] = operator.lt) -> bool:
    return comparison(Version(get_installed_vault_version()), Version(supported_version))


def vault_version_lt(supported_version: str) -> bool:
    return if_vault_version(supported_version, comparison=operator.lt)


def vault_version_ge(supported_version: str) -> bool:
    return if_vault_version(supported_version, comparison=operator.ge)


def vault_version_eq(supported_version: str) -> bool:
    return if_vault_version(supported_version, comparison=operator.eq)


def get_generate_root_otp() -> str:
    """hvac's OTP for Vault >= 1.10 (28 characters, base62)."""
    return "BMjzW3wAsEzINXCM05Wbas3u9zSl"


def create_client(url: str, use_env: bool = False, session=None, **kwargs) -> Client:
    """An hvac client for ``url`` (hvac's version adds its test TLS client certificate).

    The tests never close these one-off clients, and a kept-alive connection
    holds up a node's graceful stop (``restart_vault_cluster``) for its whole
    drain timeout, so they ask the node to close each connection after its answer.
    """
    if session is None:
        session = requests.Session()
    session.headers["Connection"] = "close"
    return Client(url=url, session=session, timeout=30, **kwargs)


def decode_generated_root_token(encoded_token: str, otp: str, url: str) -> str:
    """Decode a generated root token the way an operator does: ``bao operator generate-root -decode``.

    The CLI first reads ``sys/generate-root-token/attempt``, which Strongroom (like
    OpenBao >= 2.5, ``disable_unauthed_generate_root_endpoints``) serves only to a
    token, so the operator's token goes along as ``VAULT_TOKEN`` (hvac's harness
    runs a Vault that serves it to anyone)."""
    env = {**os.environ, "VAULT_TOKEN": server_manager.suite().root_token_for(url)}
    completed = subprocess.run(
        [openbao_binary(), "operator", "generate-root", "-address", url, "-decode", encoded_token, "-otp", otp],
        env=env,
        capture_output=True,
        encoding="utf-8",
        timeout=60,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bao operator generate-root -decode failed: {completed.stderr}")
    try:
        return json.loads(completed.stdout)["token"].strip()
    except ValueError:
        return completed.stdout.replace("Root token:", "").strip()


def base64ify(bytes_or_str: str | bytes) -> str:
    input_bytes = bytes_or_str.encode("utf8") if isinstance(bytes_or_str, str) else bytes_or_str
    return base64.urlsafe_b64encode(input_bytes).decode("ascii")
