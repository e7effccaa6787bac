"""The HTTP API: Falcon resources that parse, call the core, and render.

Vault's ``LIST`` verb must be registered before Falcon is imported (DESIGN.md,
"Pitfalls"), so importing ``strongroom.api`` does it; import it before
``falcon`` anywhere (tests included).
"""

import os

_methods = [m for m in os.environ.get("FALCON_CUSTOM_HTTP_METHODS", "").split(",") if m]
if "LIST" not in _methods:
    os.environ["FALCON_CUSTOM_HTTP_METHODS"] = ",".join(_methods + ["LIST"])
