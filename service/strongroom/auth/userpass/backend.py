"""The userpass auth method: users with a password and token settings, and ``login/<name>``.

https://developer.hashicorp.com/vault/api-docs/auth/userpass

Users live in the mount's view under ``user/<name>`` (names lower-cased, as
Vault does), one JSON record each: the scrypt record of the password
(``password.py``; the password itself is never stored or echoed) and the
token settings (``TokenParams``).  A login reads the user, checks the
password in constant time (an unknown user costs one dummy hash), and returns
a ``Login``: the core mints the token, so on a performance standby nothing is
written before the token store raises ``ReadOnly``.

Every change is a read with its index and a write checked against it, retried
on conflict: workers and nodes share the view and no lock.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from strongroom.auth.token_params import TokenParams
from strongroom.auth.userpass.password import hash_password, verify
from strongroom.errors import InvalidRequest
from strongroom.fields import string_field
from strongroom.sdk import framework, logical
from strongroom.sdk.framework import Path
from strongroom.sdk.logical import Request, Response
from strongroom.storage import Backend, TxnOp, check_op
from strongroom.storage.retry import MAX_ATTEMPTS, retry_on_conflict

USER_PREFIX = "user/"
# Vault's message for both a wrong password and an unknown user.
INVALID_CREDENTIALS = "invalid username or password"
_USERNAME = r"(?P<username>[^/]+)"


class UserpassBackend(framework.Backend):
    """The ``auth/<mount>/`` of a userpass mount (an ``Engine``) over its storage ``view``."""

    def __init__(self, view: Backend, randbytes: Callable[[int], bytes] = os.urandom):
        self._view = view
        self._randbytes = randbytes
        super().__init__(self._paths(), unauthenticated=["login/*"])

    def _paths(self) -> list[Path]:
        return [
            Path(
                "users/?",
                {logical.LIST: self._list_users},
                synopsis="Manage users allowed to authenticate.",
                description="The names of the users of this mount.",
            ),
            Path(
                f"users/{_USERNAME}/password",
                {logical.UPDATE: self._write_password},
                synopsis="Reset user's password.",
                description="Write 'password'; the old one stops working at once.",
            ),
            Path(
                f"users/{_USERNAME}/policies",
                {logical.UPDATE: self._write_policies},
                synopsis="Update the policies associated with the username.",
                description="Write 'token_policies' (or the deprecated 'policies').",
            ),
            Path(
                f"users/{_USERNAME}",
                {
                    logical.READ: self._read_user,
                    logical.CREATE: self._write_user,
                    logical.UPDATE: self._write_user,
                    logical.DELETE: self._delete_user,
                },
                exists=self._user_exists,
                synopsis="Manage users allowed to authenticate.",
                description="Write 'password' (required on create) and the token settings "
                "(token_policies, token_ttl, token_max_ttl, token_num_uses, token_period, ...).",
            ),
            Path(
                f"login/{_USERNAME}",
                {logical.UPDATE: self._login},
                synopsis="Log in with a username and password.",
                description="Write 'password'; the answer's auth block carries the new token.",
            ),
        ]

    # --- storage ---------------------------------------------------------------

    @staticmethod
    def _key(username: str) -> str:
        return USER_PREFIX + username.lower()

    def _load(self, username: str) -> tuple[dict[str, Any] | None, int]:
        raw, index = self._view.get_with_index(self._key(username))
        return (None if raw is None else json.loads(raw)), index

    def _modify(self, username: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> int:
        """Read the user, apply ``change`` (which may refuse), write it back checked against the read."""

        def attempt() -> int:
            record, index = self._load(username)
            key = self._key(username)
            updated = change(record)
            return self._view.txn([check_op(key, index), TxnOp("set", key, json.dumps(updated).encode())])

        return retry_on_conflict(
            attempt, max_attempts=MAX_ATTEMPTS, give_up_message="too many concurrent changes to the user; try again"
        )

    # --- users -----------------------------------------------------------------

    def _user_exists(self, req: Request, username: str) -> bool:
        return self._load(username)[0] is not None

    def _list_users(self, req: Request) -> Response:
        keys = [k for k in self._view.list(USER_PREFIX) if not k.endswith("/")]
        return Response(data={"keys": keys}) if keys else Response(status=404)

    def _read_user(self, req: Request, username: str) -> Response | None:
        record, _ = self._load(username)
        if record is None:
            return None
        return Response(data=TokenParams.from_json(record["token"]).render())

    def _write_user(self, req: Request, username: str) -> Response:
        data = req.data
        password = string_field(data, "password")
        if data.get("password_hash") not in (None, ""):
            raise InvalidRequest("password_hash is not supported: Strongroom stores scrypt hashes it makes itself")

        def change(record: dict[str, Any] | None) -> dict[str, Any]:
            if record is None and not password:
                raise InvalidRequest("must provide either password or password_hash")
            current = TokenParams() if record is None else TokenParams.from_json(record["token"])
            params = current.parse(data)
            secret = hash_password(password, self._randbytes) if password else record["password"]  # type: ignore[index]
            return {"password": secret, "token": params.to_json()}

        return Response(status=204, index=self._modify(username, change))

    def _write_password(self, req: Request, username: str) -> Response:
        password = string_field(req.data, "password")
        if not password:
            raise InvalidRequest("missing password")

        def change(record: dict[str, Any] | None) -> dict[str, Any]:
            if record is None:
                raise InvalidRequest("username does not exist")
            return {**record, "password": hash_password(password, self._randbytes)}

        return Response(status=204, index=self._modify(username, change))

    def _write_policies(self, req: Request, username: str) -> Response:
        data = {k: v for k, v in req.data.items() if k in ("policies", "token_policies")}

        def change(record: dict[str, Any] | None) -> dict[str, Any]:
            if record is None:
                raise InvalidRequest("username does not exist")
            params = TokenParams.from_json(record["token"]).parse(data)
            return {**record, "token": params.to_json()}

        return Response(status=204, index=self._modify(username, change))

    def _delete_user(self, req: Request, username: str) -> Response:
        return Response(status=204, index=self._view.delete(self._key(username)))

    # --- login -----------------------------------------------------------------

    def _login(self, req: Request, username: str) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/userpass#login"""
        password = string_field(req.data, "password")
        if not password:
            raise InvalidRequest("missing password")
        username = username.lower()
        record, _ = self._load(username)
        if not verify(None if record is None else record["password"], password) or record is None:
            raise InvalidRequest(INVALID_CREDENTIALS)
        params = TokenParams.from_json(record["token"])
        return Response(login=params.login(username, {"username": username}))
