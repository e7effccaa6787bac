"""The declarative path table (sdk/framework.py): matching, dispatch, existence checks, help."""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidRequest, MethodNotAllowed, UnsupportedPath
from strongroom.sdk import logical
from strongroom.sdk.framework import Backend, Path
from strongroom.sdk.logical import Request, Response


def request(operation: str, relative_path: str) -> Request:
    return Request(operation=operation, path="m/" + relative_path, mount_point="m/", relative_path=relative_path)


def echo(name: str):
    """A handler answering with its name and the groups it was called with."""
    return lambda req, **groups: Response(data={"handler": name, **groups})


@pytest.fixture
def backend() -> Backend:
    return Backend(
        [
            Path("items/?", {logical.LIST: echo("list")}, synopsis="List items."),
            Path("items/(?P<name>.+)/tune", {logical.READ: echo("tune")}),
            Path(
                "items/(?P<name>.+)",
                {logical.READ: echo("read"), logical.UPDATE: echo("write")},
                exists=lambda req, name: name == "present",
                synopsis="An item.",
                description="Read or write one item.",
            ),
            Path("opt(?:/(?P<rest>.*))?", {logical.READ: echo("opt")}),
        ]
    )


def data(resp: Response | None) -> dict:
    assert resp is not None and resp.data is not None
    return resp.data


def test_named_groups_are_passed_as_keywords(backend):
    assert data(backend.handle(request(logical.READ, "items/a/b"))) == {"handler": "read", "name": "a/b"}


def test_the_first_matching_path_wins(backend):
    assert data(backend.handle(request(logical.READ, "items/x/tune"))) == {"handler": "tune", "name": "x"}
    assert data(backend.handle(request(logical.LIST, "items/"))) == {"handler": "list"}
    assert data(backend.handle(request(logical.LIST, "items"))) == {"handler": "list"}


@pytest.mark.parametrize("path", ["itemsx", "xitems/a", "opt-x", "", "nope"])
def test_patterns_match_whole_paths_only(backend, path):
    with pytest.raises(UnsupportedPath, match="unsupported path"):
        backend.handle(request(logical.READ, path))


def test_a_group_outside_the_match_is_empty(backend):
    assert data(backend.handle(request(logical.READ, "opt"))) == {"handler": "opt", "rest": ""}
    assert data(backend.handle(request(logical.READ, "opt/a"))) == {"handler": "opt", "rest": "a"}


def test_newlines_are_ordinary_characters(backend):
    assert data(backend.handle(request(logical.READ, "items/a\nb"))) == {"handler": "read", "name": "a\nb"}


def test_an_operation_the_path_lacks_is_405(backend):
    for operation in (logical.DELETE, logical.PATCH, logical.LIST):
        with pytest.raises(MethodNotAllowed):
            backend.handle(request(operation, "items/a"))


def test_create_runs_the_update_handler(backend):
    assert data(backend.handle(request(logical.CREATE, "items/a")))["handler"] == "write"
    with pytest.raises(MethodNotAllowed):
        backend.handle(request(logical.CREATE, "items/a/tune"))


def test_a_create_handler_wins_over_update():
    backend = Backend([Path("x", {logical.CREATE: echo("create"), logical.UPDATE: echo("update")})])
    assert data(backend.handle(request(logical.CREATE, "x")))["handler"] == "create"


def test_the_backend_may_answer_unknown_paths_itself():
    backend = Backend([], on_unsupported_path=lambda req: Response(status=404, warnings=[req.relative_path]))
    resp = backend.handle(request(logical.READ, "anything"))
    assert resp is not None and (resp.status, resp.warnings) == (404, ["anything"])


def test_preflight_runs_before_the_operation_is_looked_up():
    def refuse(req, name):
        raise InvalidRequest(f"no {name}")

    backend = Backend([Path("t/(?P<name>.+)", {logical.READ: echo("read")}, preflight=refuse)])
    for operation in (logical.READ, logical.DELETE):
        with pytest.raises(InvalidRequest, match="no a"):
            backend.handle(request(operation, "t/a"))


def test_existence_checks(backend):
    assert backend.exists(request(logical.UPDATE, "items/present")) is True
    assert backend.exists(request(logical.UPDATE, "items/absent")) is False
    assert backend.exists(request(logical.UPDATE, "items/a/tune")) is None  # no check on that path
    assert backend.exists(request(logical.UPDATE, "nope")) is None


def test_no_path_is_unauthenticated_unless_listed(backend):
    assert backend.unauthenticated_paths() == []
    assert Backend([], unauthenticated=["login", "login/*"]).unauthenticated_paths() == ["login", "login/*"]


def test_help_names_the_route_and_its_text(backend):
    """Vault's path-help body at the top level: the text, no see_also, an OpenAPI document."""
    body = backend.help("items/a").raw
    text = body["help"]
    assert "Matching Route: ^items/(?P<name>.+)$" in text
    assert "An item." in text and "Read or write one item." in text
    assert "## OPERATIONS\n\n    read\n    update" in text
    assert body["see_also"] is None and body["openapi"]["paths"]
    # A path the table lacks gets Vault's catch-all route, not an error.
    assert "Matching Route: ^.*$" in backend.help("nope").raw["help"]
