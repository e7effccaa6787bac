"""Auto-unseal with ``seal "transit"``: the root key protected by another
Vault-API server's transit key.

https://developer.hashicorp.com/vault/docs/configuration/seal/transit
https://openbao.org/docs/configuration/seal/transit

Vault's design (go-kms-wrapping's transit wrapper, OpenBao's
``seal_autoseal.go``): a value the seal protects is encrypted locally with a
fresh data key (AES-256-GCM, its storage path as associated data, so a value
moved to another path does not open), and only that data key goes to the
unsealer's ``<mount_path>/encrypt/<key_name>``.  The stored blob holds the
transit ciphertext of the data key beside the local ciphertext; opening it
asks ``<mount_path>/decrypt/<key_name>``.  The unsealer never sees the root
key, and Consul never sees anything it could open without the unsealer.

``TransitSeal`` is the ``core.seal.AutoSeal`` a ``SealManager`` is given;
``TransitClient`` is the HTTP boundary (``requests``; TLS settings honoured,
``requests``' errors translated into ``StorageUnavailable`` there, with the
unsealer's own error text but never the token).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from strongroom.barrier import aead
from strongroom.config import ConfigError
from strongroom.config.model import TransitSealConfig
from strongroom.errors import IntegrityError, StorageUnavailable
from strongroom.fields import parse_go_bool

#: The version byte of a stored blob's JSON envelope (``"v"``), for a format change later.
ENVELOPE_VERSION = 1


def _env_bool(environ: Mapping[str, str], variable: str, key: str) -> bool | None:
    """``variable`` read as Vault reads it (Go's ``strconv.ParseBool``); None when unset or
    empty.  Any other spelling (``yes``, ``on``) fails start-up, as Vault's API client
    fails on ``could not parse VAULT_SKIP_VERIFY``, instead of reading as false."""
    value = environ.get(variable, "")
    if not value:
        return None
    try:
        return parse_go_bool(value)
    except ValueError:
        raise ConfigError(
            f'seal "transit".{key}: could not parse {variable}={value!r} (1, t, true, 0, f, false)',
            f'seal "transit".{key}',
        ) from None


def resolve_settings(config: TransitSealConfig, environ: Mapping[str, str]) -> TransitSealConfig:
    """The block's settings completed from the environment as Vault documents it.

    ``address``, ``token`` and the TLS files fall back to ``VAULT_ADDR``,
    ``VAULT_TOKEN``, ``VAULT_CACERT``, ``VAULT_CLIENT_CERT``, ``VAULT_CLIENT_KEY``,
    ``VAULT_TLS_SERVER_NAME`` and ``VAULT_SKIP_VERIFY`` when the block leaves
    them unset; ``VAULT_TRANSIT_SEAL_KEY_NAME``, ``VAULT_TRANSIT_SEAL_MOUNT_PATH``,
    ``VAULT_NAMESPACE`` and ``VAULT_TRANSIT_SEAL_DISABLE_RENEWAL`` win over the
    block (go-kms-wrapping reads those first).  A missing required setting, or a
    boolean variable Go's ``strconv.ParseBool`` cannot read, is a ``ConfigError``
    naming the key and its variable."""

    def fallback(value: str, variable: str) -> str:
        return value or environ.get(variable, "")

    def override(value: str, variable: str) -> str:
        return environ.get(variable) or value

    disable_renewal = _env_bool(environ, "VAULT_TRANSIT_SEAL_DISABLE_RENEWAL", "disable_renewal")
    if disable_renewal is None:
        disable_renewal = config.disable_renewal
    skip_verify = config.tls_skip_verify or bool(_env_bool(environ, "VAULT_SKIP_VERIFY", "tls_skip_verify"))
    settings = TransitSealConfig(
        address=fallback(config.address, "VAULT_ADDR").rstrip("/"),
        token=fallback(config.token, "VAULT_TOKEN"),
        key_name=override(config.key_name, "VAULT_TRANSIT_SEAL_KEY_NAME"),
        mount_path=override(config.mount_path, "VAULT_TRANSIT_SEAL_MOUNT_PATH").strip("/"),
        namespace=override(config.namespace, "VAULT_NAMESPACE").strip("/"),
        disable_renewal=disable_renewal,
        tls_ca_cert=fallback(config.tls_ca_cert, "VAULT_CACERT"),
        tls_client_cert=fallback(config.tls_client_cert, "VAULT_CLIENT_CERT"),
        tls_client_key=fallback(config.tls_client_key, "VAULT_CLIENT_KEY"),
        tls_server_name=fallback(config.tls_server_name, "VAULT_TLS_SERVER_NAME"),
        tls_skip_verify=skip_verify,
    )
    for key, variable in (
        ("address", "VAULT_ADDR"),
        ("token", "VAULT_TOKEN"),
        ("key_name", "VAULT_TRANSIT_SEAL_KEY_NAME"),
        ("mount_path", "VAULT_TRANSIT_SEAL_MOUNT_PATH"),
    ):
        if not getattr(settings, key):
            raise ConfigError(f'seal "transit".{key}: required (or set {variable})', f'seal "transit".{key}')
    if not settings.address.startswith(("http://", "https://")):
        raise ConfigError('seal "transit".address: must be an http:// or https:// URL', 'seal "transit".address')
    if bool(settings.tls_client_cert) != bool(settings.tls_client_key):
        raise ConfigError(
            'seal "transit".tls_client_cert: tls_client_cert and tls_client_key go together',
            'seal "transit".tls_client_cert',
        )
    return settings


class _ServerNameAdapter(HTTPAdapter):
    """``tls_server_name``: the SNI name sent and the name the certificate must carry,
    whatever host the address names (urllib3's ``server_hostname``/``assert_hostname``)."""

    def __init__(self, server_name: str) -> None:
        self._server_name = server_name
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._server_name
        kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


class TransitClient:
    """The unsealer's transit key over HTTP: ``encrypt``, ``decrypt``, and the
    token's ``renew-self``.  Every failure is ``StorageUnavailable`` naming the
    unsealer's address and what went wrong (its own error text, never the token)."""

    def __init__(self, settings: TransitSealConfig, timeout: float = 10.0) -> None:
        self.settings = settings
        self._timeout = timeout
        session = requests.Session()
        session.trust_env = False  # the settings say where and how; no proxies from the environment
        session.headers["X-Vault-Token"] = settings.token
        if settings.namespace:
            session.headers["X-Vault-Namespace"] = settings.namespace
        if settings.tls_skip_verify:
            session.verify = False
        elif settings.tls_ca_cert:
            session.verify = settings.tls_ca_cert
        if settings.tls_client_cert:
            session.cert = (settings.tls_client_cert, settings.tls_client_key)
        if settings.tls_server_name and settings.address.startswith("https://"):
            session.mount("https://", _ServerNameAdapter(settings.tls_server_name))
        self._session = session

    def _post(self, path: str, body: dict | None) -> dict:
        """POST ``body`` (GET when None) to ``/v1/<path>``; the JSON answer."""
        url = f"{self.settings.address}/v1/{path}"
        try:
            if body is None:
                answer = self._session.get(url, timeout=self._timeout)
            else:
                answer = self._session.post(url, json=body, timeout=self._timeout)
        except requests.RequestException as exc:
            raise StorageUnavailable(
                f"transit seal: unsealer {self.settings.address} unreachable ({type(exc).__name__})"
            ) from None
        if answer.status_code >= 300:
            try:
                reasons = "; ".join(str(e) for e in answer.json().get("errors") or [])
            except ValueError:
                reasons = ""
            raise StorageUnavailable(
                f"transit seal: unsealer {self.settings.address} answered {answer.status_code} to {path}"
                + (f": {reasons}" if reasons else "")
            )
        try:
            result = answer.json()
        except ValueError:
            raise StorageUnavailable(f"transit seal: unsealer {self.settings.address} answered no JSON") from None
        return result if isinstance(result, dict) else {}

    def encrypt(self, plaintext: bytes) -> str:
        """``<mount>/encrypt/<key>``: Vault's ``vault:vN:...`` ciphertext of ``plaintext``."""
        answer = self._post(
            f"{self.settings.mount_path}/encrypt/{self.settings.key_name}",
            {"plaintext": base64.b64encode(plaintext).decode()},
        )
        ciphertext = (answer.get("data") or {}).get("ciphertext")
        if not isinstance(ciphertext, str) or not ciphertext:
            raise StorageUnavailable(f"transit seal: unsealer {self.settings.address} returned no ciphertext")
        return ciphertext

    def decrypt(self, ciphertext: str) -> bytes:
        """``<mount>/decrypt/<key>``: the plaintext ``encrypt`` was given."""
        answer = self._post(f"{self.settings.mount_path}/decrypt/{self.settings.key_name}", {"ciphertext": ciphertext})
        plaintext = (answer.get("data") or {}).get("plaintext")
        try:
            return base64.b64decode(plaintext or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise StorageUnavailable(f"transit seal: unsealer {self.settings.address} returned no plaintext") from None

    def lookup_self(self) -> dict:
        """``auth/token/lookup-self``: the token's ``data`` (``renewable``, ``ttl``, ...)."""
        data = self._post("auth/token/lookup-self", None).get("data")
        return data if isinstance(data, dict) else {}

    def renew_self(self) -> float | None:
        """``auth/token/renew-self``: the token's new TTL in seconds, None if it has none."""
        answer = self._post("auth/token/renew-self", {})
        duration = (answer.get("auth") or {}).get("lease_duration")
        return float(duration) if isinstance(duration, int) and duration > 0 else None

    def close(self) -> None:
        self._session.close()


class TransitSeal:
    """``core.seal.AutoSeal`` over a transit key (see the module docstring).

    ``wrap``/``unwrap`` are the seal's whole contract: a stored value is a JSON
    envelope ``{"v", "key_id", "wrapped_key", "ciphertext"}`` whose
    ``ciphertext`` is ``core.barrier``'s AES-256-GCM format under the data key,
    bound to ``path``."""

    type = "transit"

    def __init__(self, client: TransitClient, randbytes: Callable[[int], bytes] = os.urandom) -> None:
        self._client = client
        self._randbytes = randbytes

    @property
    def address(self) -> str:
        """Where the unsealer is (for log lines)."""
        return self._client.settings.address

    @property
    def settings(self) -> TransitSealConfig:
        """The resolved settings (environment fallbacks applied)."""
        return self._client.settings

    @property
    def client(self) -> TransitClient:
        """The HTTP client (``TokenRenewer`` renews its token)."""
        return self._client

    def wrap(self, plaintext: bytes, path: str) -> bytes:
        data_key = self._randbytes(aead.KEY_SIZE)
        ciphertext = aead.encrypt(data_key, 0, plaintext, path.encode(), randbytes=self._randbytes)
        envelope = {
            "v": ENVELOPE_VERSION,
            "key_id": f"{self._client.settings.mount_path}/{self._client.settings.key_name}",
            "wrapped_key": self._client.encrypt(data_key),
            "ciphertext": base64.b64encode(ciphertext).decode(),
        }
        return json.dumps(envelope).encode()

    def unwrap(self, stored: bytes, path: str) -> bytes:
        try:
            envelope = json.loads(stored)
            wrapped_key, ciphertext = envelope["wrapped_key"], base64.b64decode(envelope["ciphertext"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise IntegrityError(f"{path}: not a value protected by the transit seal") from None
        data_key = self._client.decrypt(wrapped_key)
        if len(data_key) != aead.KEY_SIZE:
            raise IntegrityError(f"{path}: the transit seal's data key has the wrong length")
        return aead.decrypt(data_key, ciphertext, path.encode())

    def close(self) -> None:
        self._client.close()


class TokenRenewer:
    """Keeps the unsealer token alive (unless ``disable_renewal``), as Vault's
    lifetime watcher does: a token that is not renewable or has no TTL (a root
    or periodic-less token) is left alone; otherwise ``renew-self`` at half its
    TTL, and every ``retry`` seconds after a failure (logged by ``log`` once per
    distinct reason)."""

    def __init__(
        self,
        client: TransitClient,
        log: Callable[[str], None],
        retry: float = 10.0,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self._client = client
        self._log = log
        self._retry = retry
        self._stop = threading.Event()
        self._sleep = sleep or (lambda seconds: self._stop.wait(seconds))

    def start(self) -> None:
        threading.Thread(target=self._run, name="transit-seal-renewal", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _renewable(self) -> bool:
        """Ask until the unsealer answers whether the token is renewable."""
        said = ""
        while not self._stop.is_set():
            try:
                token = self._client.lookup_self()
                return bool(token.get("renewable")) and bool(token.get("ttl"))
            except StorageUnavailable as exc:
                if str(exc) != said:
                    said = str(exc)
                    self._log(f"transit seal: token lookup failed, retrying every {self._retry:g}s: {exc}")
                if self._sleep(self._retry):
                    return False
        return False

    def _run(self) -> None:
        if not self._renewable():
            return
        said = ""
        while not self._stop.is_set():
            try:
                ttl = self._client.renew_self()
            except StorageUnavailable as exc:
                if str(exc) != said:
                    said = str(exc)
                    self._log(f"transit seal: token renewal failed, retrying every {self._retry:g}s: {exc}")
                if self._sleep(self._retry):
                    return
                continue
            said = ""
            if ttl is None:
                return
            if self._sleep(max(ttl / 2, 1.0)):
                return


def transit_seal(config: TransitSealConfig, environ: Mapping[str, str] | None = None) -> TransitSeal:
    """The ``TransitSeal`` a ``seal "transit"`` block describes (environment fallbacks applied)."""
    return TransitSeal(TransitClient(resolve_settings(config, os.environ if environ is None else environ)))
