"""The catalog of auth method types a core may enable (Vault's ``CoreConfig.CredentialBackends``).

The token method is built into the core and is not listed: it is always
mounted at ``auth/token/`` and can be neither enabled again nor disabled.
The server wiring (and tests) hand ``AUTH_TYPES`` to the core, which never
imports the methods themselves.
"""

from __future__ import annotations

from collections.abc import Mapping

from strongroom.auth import approle, userpass
from strongroom.sdk.logical import EngineType

#: Type name -> how to build a mount of it and check its options.
AUTH_TYPES: Mapping[str, EngineType] = {
    "userpass": EngineType(factory=userpass.new_userpass, check_options=userpass.check_options),
    "approle": EngineType(factory=approle.new_approle, check_options=approle.check_options),
}
