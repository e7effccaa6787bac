"""Falcon's ``TestClient`` for an app that speaks Vault's ``LIST`` verb.

Falcon's WSGI test client always runs the app behind ``wsgiref.validate``,
whose environ check knows only RFC 2616's methods and warns ("Unknown
REQUEST_METHOD: 'LIST'") on every ``LIST``; Falcon 4 has no switch for it.
This client sends a method the validator does not know as ``GET`` and restores
the real method between the validator and the app, so everything else (the
environ, the status line, the headers, the body iterable and its closing) is
still validated, and the app sees exactly the request a WSGI server would give
it.  The method itself is Falcon's to check: Strongroom registers ``LIST``
before Falcon loads (``strongroom.api``; ``tests/conftest.py`` imports it
first).
"""

from __future__ import annotations

from falcon import testing

#: The methods ``wsgiref.validate.check_environ`` accepts without a warning.
WSGIREF_METHODS = frozenset({"GET", "HEAD", "POST", "OPTIONS", "PATCH", "PUT", "DELETE", "TRACE"})
#: Environ key carrying the real method past the validator.
METHOD_KEY = "strongroom.test.request_method"


class _RestoreMethod:
    """The WSGI app behind the validator: puts the real method back, then calls the app."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        method = environ.pop(METHOD_KEY, None)
        if method is not None:
            environ["REQUEST_METHOD"] = method
        return self.app(environ, start_response)


class VaultTestClient(testing.TestClient):
    """``falcon.testing.TestClient`` that validates ``LIST`` requests like any other."""

    def __init__(self, app, headers=None):
        super().__init__(_RestoreMethod(app), headers=headers)

    def simulate_request(self, method: str = "GET", path: str = "/", *args, **kwargs):
        if method.upper() in WSGIREF_METHODS:
            return super().simulate_request(method, path, *args, **kwargs)
        extras = {**(kwargs.pop("extras", None) or {}), METHOD_KEY: method}
        return super().simulate_request("GET", path, *args, extras=extras, **kwargs)
