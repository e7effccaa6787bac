"""Any request either succeeds or is refused with a client error that changed nothing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.engines import create_engine
from strongroom.errors import InvalidRequest, MethodNotAllowed
from strongroom.sdk import logical
from tests.unit.engines.kv_support import FakeClock, FlakyBackend, make_request

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)
field_names = st.sampled_from(
    [
        "data",
        "options",
        "version",
        "versions",
        "max_versions",
        "cas_required",
        "delete_version_after",
        "custom_metadata",
        "depth",
        "ttl",
        "cas",
        "x",
    ]
)
bodies = st.dictionaries(field_names, json_values, max_size=4)
operations = st.sampled_from(
    [logical.READ, logical.LIST, logical.CREATE, logical.UPDATE, logical.PATCH, logical.DELETE]
)
paths = st.sampled_from(
    [
        "",
        "config",
        "data",
        "data/",
        "data/a",
        "data/a/",
        "data/d/b",
        "metadata/",
        "metadata/a",
        "metadata/d",
        "delete/a",
        "undelete/a",
        "destroy/a",
        "subkeys/a",
        "a",
        "d/b",
        "x/",
    ]
)


def _seeded(version: str):
    backend = FlakyBackend()
    engine = create_engine("kv", {"version": version}, backend, FakeClock())
    if version == "2":
        engine.handle(make_request(logical.UPDATE, "data/a", {"data": {"k": {"n": 1}}}))
        engine.handle(make_request(logical.UPDATE, "data/d/b", {"data": {"k": 1}}))
    else:
        engine.handle(make_request(logical.UPDATE, "a", {"k": 1}))
    return backend, engine


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=st.sampled_from(["1", "2"]), steps=st.lists(st.tuples(operations, paths, bodies), max_size=4))
def test_requests_succeed_or_change_nothing(version, steps):
    backend, engine = _seeded(version)
    for operation, path, body in steps:
        if operation in (logical.READ, logical.LIST):
            body = {k: str(v) for k, v in body.items()}
        before = backend.snapshot()
        request = make_request(operation, path, body)
        try:
            engine.exists(request)
            resp = engine.handle(request)
        except (InvalidRequest, MethodNotAllowed):
            assert backend.snapshot() == before
            continue
        if resp is not None and resp.status == 404:
            assert backend.snapshot() == before
