"""The floor for a Falcon app under gunicorn: a WSGI app that does nothing but answer.

Every path answers with a small JSON document; a POST or PUT body is read
first.  The KV scenario's wrk scripts drive it unchanged, so whatever
Strongroom costs above this row is Strongroom's own work.
"""

import falcon

_BODY = b'{"data":{"data":{"value":"ok"}},"lease_duration":0,"renewable":false}'


def answer(req: falcon.Request, resp: falcon.Response, **_params) -> None:
    """Read the request body, if any, and answer 200 with ``_BODY``."""
    if req.method in ("POST", "PUT"):
        req.bounded_stream.read()
    resp.data = _BODY
    resp.content_type = falcon.MEDIA_JSON


def create_app() -> falcon.App:
    app = falcon.App()
    app.add_sink(answer, prefix="/")
    return app


app = create_app()
