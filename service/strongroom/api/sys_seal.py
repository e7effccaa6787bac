"""``sys/init``, ``sys/unseal``, ``sys/seal-status``: served while sealed.

With an auto seal (``seal "transit"``) ``sys/init`` takes ``recovery_shares`` and
``recovery_threshold`` instead of ``secret_shares``/``secret_threshold`` and
answers ``recovery_keys``/``recovery_keys_base64`` beside empty ``keys``.

https://developer.hashicorp.com/vault/api-docs/system/init
https://developer.hashicorp.com/vault/api-docs/system/unseal
https://developer.hashicorp.com/vault/api-docs/system/seal-status
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.api.body import read_json
from strongroom.core.seal import validate_recovery_parameters, validate_seal_parameters
from strongroom.errors import InvalidRequest

if TYPE_CHECKING:
    import falcon

    from strongroom.core.core import Core


class InitResource:
    """GET: is storage initialised?  PUT/POST: initialise it."""

    def __init__(self, core: Core, max_request_size: int) -> None:
        self._core = core
        self._max = max_request_size

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"initialized": self._core.seal.status()["initialized"]}

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req, self._max)
        for unsupported in ("pgp_keys", "root_token_pgp_key", "recovery_pgp_keys"):
            if data.get(unsupported):
                raise InvalidRequest(f"{unsupported} is not supported by Strongroom")
        status = self._core.seal.status()
        # Vault's validateInitParameters: the parameters of the other kind of seal are refused.
        other = (
            ("secret_shares", "secret_threshold")
            if status["recovery_seal"]
            else ("recovery_shares", "recovery_threshold")
        )
        given = [name for name in other if data.get(name) not in (None, 0)]
        if given:
            raise InvalidRequest(f"parameters {','.join(given)} not applicable to seal type {status['type']}")
        if status["recovery_seal"]:
            recovery_shares, recovery_threshold = validate_recovery_parameters(
                data.get("recovery_shares"), data.get("recovery_threshold")
            )
            resp.media = self._core.initialize(
                1, 1, recovery_shares=recovery_shares, recovery_threshold=recovery_threshold
            )
            return
        shares, threshold = validate_seal_parameters(data.get("secret_shares"), data.get("secret_threshold"))
        resp.media = self._core.initialize(shares, threshold)

    on_post = on_put


class UnsealResource:
    """PUT/POST: submit one share, or reset progress.  With an auto seal the shares
    are recovery key shares, accepted only after a manual seal (``SealManager.unseal``)."""

    def __init__(self, core: Core, max_request_size: int) -> None:
        self._core = core
        self._max = max_request_size

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req, self._max)
        reset = data.get("reset", False)
        if not isinstance(reset, bool):
            raise InvalidRequest("'reset' must be a boolean")
        key = data.get("key")
        if key is not None and not isinstance(key, str):
            raise InvalidRequest("'key' must be a valid hex or base64 string")
        resp.media = self._core.seal.unseal(key, reset=reset)

    on_post = on_put


class SealStatusResource:
    """GET: Vault's seal status body."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._core.seal.status()
