"""The AppRole auth method: roles, their role ID and secret IDs, and ``login``.

https://developer.hashicorp.com/vault/api-docs/auth/approle

Layout in the mount's view:

* ``salt``: 32 random bytes, written with the first role; every ID below is
  stored by HMAC-SHA256 under it, never in clear;
* ``role/<name>``: the role (settings, ``TokenParams``, and its role ID, which
  Vault shows on read, so it is kept);
* ``role_id/<hmac>``: the name of the role a role ID belongs to;
* ``secret_id/<name>/<hmac>``: a secret ID's accessor, times, uses left, metadata;
* ``accessor/<name>/<accessor>``: the HMAC of the secret ID it names.

A login only reads until it spends a secret ID's use (a checked write, so
two logins never spend the same last use); on a performance standby that
write raises ``ReadOnly`` before anything changed, and the request goes to
the active node.  The token is minted by the core from the returned ``Login``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

from strongroom.auth.approle.params import (
    check_source,
    cidr_blocks,
    render_secret_id,
    role_settings,
    secret_id_metadata,
)
from strongroom.auth.token_params import TokenParams
from strongroom.errors import InvalidRequest, NotFound
from strongroom.fields import int_field, string_field, ttl_seconds
from strongroom.sdk import framework, logical
from strongroom.sdk.logical import Clock, Request, Response
from strongroom.storage import Backend, TxnOp, WriteConflict, check_op
from strongroom.storage.retry import MAX_ATTEMPTS, retry_on_conflict

INVALID_CREDENTIALS = "invalid role or secret ID"
_ROLE = r"(?P<role>[^/]+)"


class AppRoleBackend(framework.Backend):
    """The ``auth/<mount>/`` of an AppRole mount (an ``Engine``) over its storage ``view``."""

    def __init__(self, view: Backend, clock: Clock, randbytes: Callable[[int], bytes] = os.urandom):
        self._view = view
        self._clock = clock
        self._randbytes = randbytes
        super().__init__(self._paths(), unauthenticated=["login"])

    def _paths(self) -> list[framework.Path]:
        p = framework.Path
        return [
            p("role/?", {logical.LIST: self._list_roles}, synopsis="Lists all the roles registered with the backend."),
            p(
                f"role/{_ROLE}/role-id",
                {logical.READ: self._read_role_id, logical.UPDATE: self._write_role_id},
                synopsis="Returns the 'role_id' of the role, or sets a custom one.",
            ),
            p(
                f"role/{_ROLE}/secret-id/?",
                {logical.UPDATE: self._generate_secret_id, logical.LIST: self._list_accessors},
                synopsis="Generate a SecretID against this role, or list the accessors of its SecretIDs.",
            ),
            p(
                f"role/{_ROLE}/custom-secret-id",
                {logical.UPDATE: self._custom_secret_id},
                synopsis="Assign a SecretID of choice against the role.",
            ),
            p(
                f"role/{_ROLE}/secret-id/lookup",
                {logical.UPDATE: self._lookup_secret_id},
                synopsis="Read the properties of an issued secret_id.",
            ),
            p(
                f"role/{_ROLE}/secret-id/destroy",
                {logical.UPDATE: self._destroy_secret_id, logical.DELETE: self._destroy_secret_id},
                synopsis="Invalidate an issued secret_id.",
            ),
            p(
                f"role/{_ROLE}/secret-id-accessor/lookup",
                {logical.UPDATE: self._lookup_accessor},
                synopsis="Read the properties of an issued secret_id, by its accessor.",
            ),
            p(
                f"role/{_ROLE}/secret-id-accessor/destroy",
                {logical.UPDATE: self._destroy_accessor, logical.DELETE: self._destroy_accessor},
                synopsis="Invalidate an issued secret_id, by its accessor.",
            ),
            p(
                f"role/{_ROLE}",
                {
                    logical.READ: self._read_role,
                    logical.UPDATE: self._write_role,
                    logical.DELETE: self._delete_role,
                },
                exists=lambda req, role: self._role(role) is not None,
                synopsis="Register a role with the backend.",
                description="token_policies, token_ttl, token_max_ttl, token_num_uses, secret_id_ttl, "
                "secret_id_num_uses, bind_secret_id, ...",
            ),
            p("login", {logical.UPDATE: self._login}, synopsis="Issue a token based on the credentials supplied."),
        ]

    # --- storage helpers ---------------------------------------------------------

    def _get(self, key: str) -> dict[str, Any] | None:
        raw = self._view.get(key)
        return None if raw is None else json.loads(raw)

    def _salt(self, create: bool = False) -> bytes | None:
        raw = self._view.get("salt")
        if raw is None and create:
            salt = self._randbytes(32)
            try:
                self._view.txn([check_op("salt", 0), TxnOp("set", "salt", salt)])
            except WriteConflict:  # another writer made it first: use theirs
                pass
            raw = self._view.get("salt")
        return raw

    def _hmac(self, value: str, salt: bytes) -> str:
        return hmac.new(salt, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def _role(self, name: str) -> dict[str, Any] | None:
        return self._get(f"role/{name.lower()}")

    def _require_role(self, name: str) -> dict[str, Any]:
        role = self._role(name)
        if role is None:
            raise NotFound(f'role "{name}" does not exist')
        return role

    def _new_id(self) -> str:
        return str(uuid.UUID(bytes=self._randbytes(16)))

    # --- roles -----------------------------------------------------------------

    def _list_roles(self, req: Request) -> Response:
        keys = [k for k in self._view.list("role/") if not k.endswith("/")]
        return Response(data={"keys": keys}) if keys else Response(status=404)

    def _read_role(self, req: Request, role: str) -> Response | None:
        entry = self._role(role)
        if entry is None:
            return None
        data = {
            "bind_secret_id": entry["bind_secret_id"],
            "local_secret_ids": False,
            "secret_id_bound_cidrs": entry.get("secret_id_bound_cidrs") or None,
            "secret_id_num_uses": entry["secret_id_num_uses"],
            "secret_id_ttl": entry["secret_id_ttl"],
        }
        data.update(TokenParams.from_json(entry["token"]).render())
        return Response(data=data)

    def _write_role(self, req: Request, role: str) -> Response:
        name = role.lower()
        data = req.data
        salt = self._salt(create=True)
        assert salt is not None

        def attempt() -> int:
            raw, index = self._view.get_with_index(f"role/{name}")
            current = None if raw is None else json.loads(raw)
            entry = dict(
                current or {"role_id": "", "bind_secret_id": True, "secret_id_ttl": 0, "secret_id_num_uses": 0}
            )
            entry.update(role_settings(data))
            entry["token"] = TokenParams.from_json((current or {}).get("token", {})).parse(data).to_json()
            if not entry["bind_secret_id"] and not entry.get("secret_id_bound_cidrs"):
                if not entry["token"].get("token_bound_cidrs"):
                    raise InvalidRequest("at least one constraint should be enabled on the role")
            ops = [check_op(f"role/{name}", index)]
            new_role_id = string_field(data, "role_id")
            if not entry["role_id"] or new_role_id:
                ops += self._role_id_ops(name, entry, new_role_id or self._new_id(), salt)
            ops.append(TxnOp("set", f"role/{name}", json.dumps(entry).encode()))
            return self._view.txn(ops)

        index = retry_on_conflict(attempt, max_attempts=MAX_ATTEMPTS, give_up_message="role changed concurrently")
        return Response(status=204, index=index)

    def _role_id_ops(self, name: str, entry: dict[str, Any], role_id: str, salt: bytes) -> list[TxnOp]:
        """Operations that give role ``name`` the role ID ``role_id`` (``entry`` updated in place)."""
        key = f"role_id/{self._hmac(role_id, salt)}"
        owner = self._get(key)
        if owner is not None and owner["name"] != name:
            raise InvalidRequest("role_id already in use")
        ops = []
        if entry.get("role_id"):
            ops.append(TxnOp("delete", f"role_id/{self._hmac(entry['role_id'], salt)}"))
        ops.append(TxnOp("set", key, json.dumps({"name": name}).encode()))
        entry["role_id"] = role_id
        return ops

    def _delete_role(self, req: Request, role: str) -> Response:
        name = role.lower()
        entry = self._role(name)
        salt = self._salt()
        if entry is None or salt is None:
            return Response(status=204)
        ops = [
            TxnOp("delete", f"role/{name}"),
            TxnOp("delete", f"role_id/{self._hmac(entry['role_id'], salt)}"),
            TxnOp("delete-tree", f"secret_id/{name}/"),
            TxnOp("delete-tree", f"accessor/{name}/"),
        ]
        return Response(status=204, index=self._view.txn(ops))

    def _read_role_id(self, req: Request, role: str) -> Response:
        return Response(data={"role_id": self._require_role(role)["role_id"]})

    def _write_role_id(self, req: Request, role: str) -> Response:
        role_id = string_field(req.data, "role_id")
        if not role_id:
            raise InvalidRequest("missing role_id")
        name = role.lower()
        salt = self._salt(create=True)
        assert salt is not None
        raw, index = self._view.get_with_index(f"role/{name}")
        if raw is None:
            raise NotFound(f'role "{role}" does not exist')
        entry = json.loads(raw)
        ops = [check_op(f"role/{name}", index), *self._role_id_ops(name, entry, role_id, salt)]
        ops.append(TxnOp("set", f"role/{name}", json.dumps(entry).encode()))
        return Response(status=204, index=self._view.txn(ops))

    # --- secret IDs --------------------------------------------------------------

    def _generate_secret_id(self, req: Request, role: str) -> Response:
        return self._issue_secret_id(req, role, self._new_id())

    def _custom_secret_id(self, req: Request, role: str) -> Response:
        secret_id = string_field(req.data, "secret_id")
        if not secret_id:
            raise InvalidRequest("missing secret_id")
        return self._issue_secret_id(req, role, secret_id)

    def _issue_secret_id(self, req: Request, role: str, secret_id: str) -> Response:
        name = role.lower()
        entry = self._require_role(name)
        if not entry["bind_secret_id"]:
            raise InvalidRequest("bind_secret_id is not set on the role")
        salt = self._salt(create=True)
        assert salt is not None
        metadata = secret_id_metadata(req.data.get("metadata"))
        ttl = entry["secret_id_ttl"]
        if req.data.get("ttl") not in (None, ""):
            asked = ttl_seconds(req.data.get("ttl"), "ttl")
            ttl = min(asked, ttl) if ttl and asked else asked or ttl
        uses = entry["secret_id_num_uses"]
        if req.data.get("num_uses") not in (None, ""):
            asked_uses = int_field(req.data, "num_uses")
            if asked_uses < 0:
                raise InvalidRequest("num_uses cannot be negative")
            if uses and (asked_uses == 0 or asked_uses > uses):
                raise InvalidRequest("num_uses cannot be higher than the role's secret_id_num_uses")
            uses = asked_uses
        now = self._clock()
        hashed = self._hmac(secret_id, salt)
        accessor = self._new_id()
        record = {
            "secret_id_accessor": accessor,
            "creation_time": now.timestamp(),
            "expiration_time": now.timestamp() + ttl if ttl else None,
            "last_updated_time": now.timestamp(),
            "secret_id_num_uses": uses,
            "secret_id_ttl": ttl,
            "metadata": metadata,
            "cidr_list": cidr_blocks(req.data.get("cidr_list")) or list(entry.get("secret_id_bound_cidrs") or []),
        }
        key = f"secret_id/{name}/{hashed}"
        ops = [
            TxnOp("check-not-exists", key),
            TxnOp("set", key, json.dumps(record).encode()),
            TxnOp("set", f"accessor/{name}/{accessor}", json.dumps({"secret_id_hmac": hashed}).encode()),
        ]
        try:
            index = self._view.txn(ops)
        except WriteConflict:
            raise InvalidRequest("SecretID is already registered") from None
        return Response(
            data={
                "secret_id": secret_id,
                "secret_id_accessor": accessor,
                "secret_id_num_uses": uses,
                "secret_id_ttl": ttl,
            },
            index=index,
        )

    def _list_accessors(self, req: Request, role: str) -> Response:
        self._require_role(role)
        keys = self._view.list(f"accessor/{role.lower()}/")
        return Response(data={"keys": keys}) if keys else Response(status=404)

    def _secret_record(self, name: str, secret_id: str) -> tuple[str, dict[str, Any] | None]:
        salt = self._salt()
        if salt is None:
            return "", None
        key = f"secret_id/{name}/{self._hmac(secret_id, salt)}"
        return key, self._get(key)

    def _lookup_secret_id(self, req: Request, role: str) -> Response:
        secret_id = string_field(req.data, "secret_id")
        if not secret_id:
            raise InvalidRequest("missing secret_id")
        self._require_role(role)
        _, record = self._secret_record(role.lower(), secret_id)
        return Response(status=204) if record is None else Response(data=render_secret_id(record))

    def _destroy_secret_id(self, req: Request, role: str) -> Response:
        secret_id = string_field(req.data, "secret_id")
        if not secret_id:
            raise InvalidRequest("missing secret_id")
        name = role.lower()
        self._require_role(name)
        key, record = self._secret_record(name, secret_id)
        if record is None:
            return Response(status=204)
        ops = [TxnOp("delete", key), TxnOp("delete", f"accessor/{name}/{record['secret_id_accessor']}")]
        return Response(status=204, index=self._view.txn(ops))

    def _accessor_record(self, req: Request, role: str) -> tuple[str, str, dict[str, Any] | None] | Response:
        """The accessor, its secret ID's key and record; or Vault's 404 answer for an unknown accessor."""
        accessor = string_field(req.data, "secret_id_accessor")
        if not accessor:
            raise InvalidRequest("missing secret_id_accessor")
        name = role.lower()
        self._require_role(name)
        pointer = self._get(f"accessor/{name}/{accessor}")
        if pointer is None:
            message = f'failed to find accessor entry for secret_id_accessor: "{accessor}"'
            return Response(status=404, data={"error": message})  # Vault answers with data, not errors
        key = f"secret_id/{name}/{pointer['secret_id_hmac']}"
        return accessor, key, self._get(key)

    def _lookup_accessor(self, req: Request, role: str) -> Response:
        found = self._accessor_record(req, role)
        if isinstance(found, Response):
            return found
        record = found[2]
        return Response(status=204) if record is None else Response(data=render_secret_id(record))

    def _destroy_accessor(self, req: Request, role: str) -> Response:
        found = self._accessor_record(req, role)
        if isinstance(found, Response):
            return found
        accessor, key, _ = found
        ops = [TxnOp("delete", key), TxnOp("delete", f"accessor/{role.lower()}/{accessor}")]
        return Response(status=204, index=self._view.txn(ops))

    # --- login -----------------------------------------------------------------

    def _login(self, req: Request) -> Response:
        """https://developer.hashicorp.com/vault/api-docs/auth/approle#login-with-approle"""
        role_id = string_field(req.data, "role_id")
        if not role_id:
            raise InvalidRequest("missing role_id")
        secret_id = string_field(req.data, "secret_id")
        salt = self._salt()
        owner = None if salt is None else self._get(f"role_id/{self._hmac(role_id, salt)}")
        role = None if owner is None else self._role(owner["name"])
        if role is None or salt is None or owner is None:
            raise InvalidRequest(INVALID_CREDENTIALS)
        name = owner["name"]
        check_source(req.remote_addr, role.get("secret_id_bound_cidrs") or [], "role")
        metadata: dict[str, str] = {}
        if role["bind_secret_id"]:
            if not secret_id:
                raise InvalidRequest("missing secret_id")
            metadata = self._spend_secret_id(name, self._hmac(secret_id, salt), req.remote_addr)
        params = TokenParams.from_json(role["token"])
        # The secret ID's metadata goes on the token, beside the role's name (Vault's order of precedence).
        return Response(login=params.login("", {**metadata, "role_name": name}))

    def _spend_secret_id(self, name: str, hashed: str, remote_addr: str) -> dict[str, str]:
        """Check the secret ID and spend one of its uses (the last use deletes it);
        an expired one is removed and refused; its metadata.  A checked write: on
        conflict, start over."""
        key = f"secret_id/{name}/{hashed}"

        def attempt() -> dict[str, str] | None:
            raw, index = self._view.get_with_index(key)
            if raw is None:
                return None
            record = json.loads(raw)
            accessor_key = f"accessor/{name}/{record['secret_id_accessor']}"
            expires = record.get("expiration_time")
            if expires is not None and self._clock().timestamp() >= expires:
                self._view.txn([check_op(key, index), TxnOp("delete", key), TxnOp("delete", accessor_key)])
                return None
            check_source(remote_addr, record.get("cidr_list") or [], "secret ID")
            metadata: dict[str, str] = record.get("metadata") or {}
            uses = record["secret_id_num_uses"]
            if uses == 0:
                return metadata
            if uses == 1:
                self._view.txn([check_op(key, index), TxnOp("delete", key), TxnOp("delete", accessor_key)])
            else:
                record["secret_id_num_uses"] = uses - 1
                record["last_updated_time"] = self._clock().timestamp()
                self._view.txn([check_op(key, index), TxnOp("set", key, json.dumps(record).encode())])
            return metadata

        spent = retry_on_conflict(attempt, max_attempts=MAX_ATTEMPTS, give_up_message="secret ID used concurrently")
        if spent is None:
            raise InvalidRequest(INVALID_CREDENTIALS)
        return spent
