"""Audit devices: table, salt, Vault's log format, HMAC'ing, failure semantics."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import stat
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from strongroom.core.audit import AuditBroker
from strongroom.errors import AuditFailed, InvalidRequest
from strongroom.sdk.logical import Request, Response
from strongroom.storage.inmem import InmemBackend
from strongroom.timefmt import rfc3339

SECRET = "hunter2-correct-horse"
ROOT_TOKEN = "s.RootTokenPlaintext"
ACCESSOR = "AccessorPlaintext42"


class Clock:
    def __init__(self):
        self.now = datetime(2026, 1, 2, 3, 4, 5, 123400, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def backend():
    return InmemBackend()


@pytest.fixture
def broker(backend):
    b = AuditBroker(backend, Clock())
    yield b
    b.close()


def kv_write(**data) -> Request:
    return Request(
        operation="create",
        path="secret/data/app",
        data={"data": data or {"password": SECRET}},
        client_token=ROOT_TOKEN,
        mount_point="secret/",
        mount_type="kv",
        mount_accessor="kv_0a1b2c3d",
        request_id="8d0c1c2e-0000-4000-8000-000000000001",
        remote_addr="127.0.0.1",
    )


AUTH = {
    "client_token": ROOT_TOKEN,
    "accessor": ACCESSOR,
    "display_name": "root",
    "policies": ["root"],
    "token_policies": ["root"],
    "metadata": {"team": "ops"},
    "entity_id": "",
    "token_type": "service",
}


def lines(path) -> list[dict]:
    with open(path, "rb") as f:
        return [json.loads(line) for line in f.read().splitlines()]


def entries(path) -> list[dict]:
    """Log entries without the probe written at enable time."""
    return [e for e in lines(path) if e["request"]["path"] != "sys/audit/test"]


# --- the table ---------------------------------------------------------------------


def test_enable_list_disable(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    assert broker.list() == {
        "file/": {
            "type": "file",
            "description": "",
            "options": {"file_path": str(log)},
            "local": False,
            "path": "file/",
        }
    }
    broker.enable(
        "second/", "file", "the other one", {"file_path": str(tmp_path / "b.log"), "log_raw": True}, local=True
    )
    assert broker.list()["second/"] == {
        "type": "file",
        "description": "the other one",
        "local": True,
        "options": {"file_path": str(tmp_path / "b.log"), "log_raw": "true"},
        "path": "second/",
    }
    assert broker.disable("file/") is True
    assert list(broker.list()) == ["second/"]
    assert broker.disable("file/") is False  # Vault answers 204 for a missing device too


def test_enable_writes_vaults_probe_entry(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    (probe,) = lines(log)
    assert probe["type"] == "request" and probe["time"] == "2026-01-02T03:04:05.1234Z"
    assert probe["auth"] == {"token_type": "default"}
    assert probe["request"]["path"] == "sys/audit/test" and probe["request"]["operation"] == "update"
    assert probe["request"]["namespace"] == {"id": "root"}


@pytest.mark.parametrize(
    "path, type_, options, message",
    [
        ("file", "file", {"file_path": "/dev/null"}, "path already in use"),
        ("file/nested", "file", {"file_path": "/dev/null"}, "path already in use"),
        ("other", "syslog", {}, 'unknown backend type: "syslog"'),
        ("other", "", {}, 'unknown backend type: ""'),
        ("other", "file", {}, "file_path is required"),
        ("other", "file", {"file_path": "/dev/null", "format": "xml"}, 'unknown format type "xml"'),
        ("other", "file", {"file_path": "/dev/null", "format": "jsonx"}, "jsonx formatting has been removed"),
        ("other", "file", {"file_path": "/dev/null", "log_raw": "maybe"}, '"log_raw"'),
        ("other", "file", {"file_path": "/dev/null", "hmac_accessor": "nope"}, '"hmac_accessor"'),
        ("other", "file", {"file_path": "/dev/null", "mode": "abc"}, '"mode"'),
        ("other", "file", {"file_path": "/dev/null", "mode": "-600"}, '"mode"'),
        ("other", "file", {"file_path": "/dev/null", "prefix": "x"}, "audit log prefixing is not allowed"),
        ("other", "file", {"file_path": "/dev/null", "nested": {"a": 1}}, '"nested" must be a string'),
        ("", "file", {"file_path": "/dev/null"}, "path cannot be empty"),
    ],
)
def test_enable_refuses_like_vault(broker, path, type_, options, message):
    broker.enable("file", "file", "", {"file_path": "discard"})
    with pytest.raises(InvalidRequest) as exc:
        broker.enable(path, type_, "", options)
    assert message in str(exc.value)
    assert list(broker.list()) == ["file/"]


def test_sibling_with_common_string_prefix_is_not_a_conflict(broker):
    broker.enable("file", "file", "", {"file_path": "discard"})
    broker.enable("fi", "file", "", {"file_path": "discard"})
    assert sorted(broker.list()) == ["fi/", "file/"]


def test_unknown_options_are_kept_as_vault_does(broker):
    broker.enable("file", "file", "", {"file_path": "discard", "fallback": False, "x": 3})
    assert broker.list()["file/"]["options"] == {"file_path": "discard", "fallback": "false", "x": "3"}


def test_enable_refuses_a_file_it_cannot_open_and_persists_nothing(broker, backend, tmp_path):
    with pytest.raises(InvalidRequest) as exc:
        broker.enable("file", "file", "", {"file_path": str(tmp_path / "missing-dir" / "audit.log")})
    assert "unable to open" in str(exc.value)
    assert not (tmp_path / "missing-dir").exists()  # no directories conjured up
    assert broker.list() == {}
    assert AuditBroker(backend, Clock()).list() == {}


def test_prefix_when_the_server_allows_it(backend, tmp_path):
    broker = AuditBroker(backend, Clock(), allow_prefix=True)
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log), "prefix": "@cee: "})
    broker.log_request(kv_write(), AUTH)
    raw = log.read_text().splitlines()
    assert all(line.startswith("@cee: {") for line in raw)
    assert json.loads(raw[-1][len("@cee: ") :])["type"] == "request"
    with pytest.raises(InvalidRequest):
        broker.enable("two", "file", "", {"file_path": str(log), "prefix": "a\nb"})
    broker.close()


@pytest.mark.parametrize(
    "mode, expected", [(None, 0o600), ("0640", 0o640), ("0755", 0o644), ("0666", 0o666), ("0000", 0o600)]
)
def test_file_mode_applies_to_a_file_the_device_creates(broker, tmp_path, mode, expected):
    log = tmp_path / "audit.log"
    old_umask = os.umask(0o077)  # the mode is the device's, whatever the umask
    try:
        options = {"file_path": str(log)} | ({"mode": mode} if mode else {})
        broker.enable("file", "file", "", options)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(log).st_mode) == expected


@pytest.mark.parametrize("mode", [None, "0777", "0666", "0640", "0000"])
def test_an_existing_file_keeps_its_mode_and_content(broker, tmp_path, mode):
    """CVE-2025-6000 class: ``mode`` never chmods a file the device did not create."""
    log = tmp_path / "audit.log"
    log.write_text("precious\n")
    os.chmod(log, 0o600)
    broker.enable("file", "file", "", {"file_path": str(log)} | ({"mode": mode} if mode else {}))
    broker.log_request(kv_write(), AUTH)
    broker.reopen()
    broker.reload()
    broker.log_request(kv_write(), AUTH)
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    assert log.read_text().startswith("precious\n")  # appended to, never truncated
    assert len(entries_after_first_line(log)) == 2


def entries_after_first_line(path) -> list[dict]:
    return [
        e
        for e in (json.loads(line) for line in path.read_text().splitlines()[1:])
        if e["request"]["path"] != "sys/audit/test"
    ]


# --- persistence and reload ----------------------------------------------------------


def test_second_broker_over_same_storage_has_same_devices_and_salt(backend, tmp_path):
    first = AuditBroker(backend, Clock())
    first.enable("file", "file", "desc", {"file_path": str(tmp_path / "one.log")})
    second = AuditBroker(backend, Clock())
    assert second.list() == first.list()
    assert second.hash("file", SECRET) == first.hash("file/", SECRET)
    second.log_request(kv_write(), AUTH)
    (entry,) = entries(tmp_path / "one.log")
    assert entry["request"]["data"]["data"]["password"] == first.hash("file", SECRET)
    first.close()
    second.close()


def test_salt_is_per_device_and_new_after_reenable(broker, tmp_path):
    broker.enable("a", "file", "", {"file_path": "discard"})
    broker.enable("b", "file", "", {"file_path": "discard"})
    assert broker.hash("a", SECRET) != broker.hash("b", SECRET)
    before = broker.hash("a", SECRET)
    broker.disable("a")
    broker.enable("a", "file", "", {"file_path": "discard"})
    assert broker.hash("a", SECRET) != before


def test_reload_picks_up_changes_made_elsewhere(backend, tmp_path):
    writer, reader = AuditBroker(backend, Clock()), AuditBroker(backend, Clock())
    assert reader.list() == {}
    log = tmp_path / "audit.log"
    writer.enable("file", "file", "", {"file_path": str(log)})
    assert reader.list() == {}  # cached until told
    reader.reload()
    reader.log_request(kv_write(), AUTH)
    assert len(entries(log)) == 1
    writer.disable("file")
    reader.reload()
    assert reader.list() == {}
    reader.log_request(kv_write(), AUTH)  # no devices: a no-op
    assert len(entries(log)) == 1
    writer.close()
    reader.close()


def test_reload_keeps_open_files_of_unchanged_devices(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    broker.log_request(kv_write(), AUTH)
    fds_before = set(os.listdir("/proc/self/fd"))
    for _ in range(5):
        broker.reload()
        broker.log_request(kv_write(), AUTH)
    assert set(os.listdir("/proc/self/fd")) == fds_before
    assert len(entries(log)) == 6


def test_table_is_stored_through_the_view_only(backend, broker):
    broker.enable("file", "file", "", {"file_path": "discard"})
    assert backend.list("") == ["device/"]


# --- hashing -----------------------------------------------------------------------


def test_request_entry_hmacs_secrets_and_tokens_never_plaintext(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    req = kv_write(password=SECRET, nested={"list": [SECRET, 7, True, None]}, count=3)
    broker.log_request(req, AUTH)
    broker.log_response(req, AUTH, Response(data={"echo": SECRET, "version": 1}))
    raw = log.read_bytes()
    for plaintext in (SECRET, ROOT_TOKEN, ACCESSOR):
        assert plaintext.encode() not in raw
    request, response = entries(log)
    hashed = broker.hash("file", SECRET)
    data = request["request"]["data"]["data"]
    assert data == {"password": hashed, "nested": {"list": [hashed, 7, True, None]}, "count": 3}
    assert request["request"]["client_token"] == broker.hash("file", ROOT_TOKEN)
    assert request["request"]["client_token_accessor"] == broker.hash("file", ACCESSOR)
    assert request["auth"]["client_token"] == broker.hash("file", ROOT_TOKEN)
    assert request["auth"]["accessor"] == broker.hash("file", ACCESSOR)
    assert request["auth"]["metadata"] == {"team": "ops"}  # Vault leaves auth metadata clear
    assert response["response"]["data"] == {"echo": hashed, "version": 1}
    assert hashed.startswith("hmac-sha256:") and len(hashed) == len("hmac-sha256:") + 64


def test_empty_strings_are_hashed_and_map_keys_never(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    broker.log_request(kv_write(**{SECRET: ""}), AUTH)
    (entry,) = entries(log)
    # Vault hashes "" too (its HMAC shows up for empty fields) and leaves keys alone.
    (value,) = entry["request"]["data"]["data"].values()
    assert list(entry["request"]["data"]["data"]) == [SECRET]
    assert value.startswith("hmac-sha256:")


def test_hash_matches_the_log_and_validates_input(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    broker.log_request(kv_write(), AUTH)
    (entry,) = entries(log)
    assert broker.hash("file", SECRET) == entry["request"]["data"]["data"]["password"]
    with pytest.raises(InvalidRequest, match='the "input" parameter is empty'):
        broker.hash("file", "")
    with pytest.raises(InvalidRequest, match='unknown audit backend "nothere/"'):
        broker.hash("nothere", "x")


def test_log_raw_writes_plaintext(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("raw", "file", "", {"file_path": str(log), "log_raw": "true"})
    broker.log_request(kv_write(), AUTH)
    (entry,) = entries(log)
    assert entry["request"]["data"]["data"]["password"] == SECRET
    assert entry["request"]["client_token"] == ROOT_TOKEN
    assert entry["auth"]["accessor"] == ACCESSOR


def test_hmac_accessor_false_leaves_accessors_clear(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log), "hmac_accessor": "false"})
    req = kv_write()
    broker.log_response(
        req,
        AUTH,
        Response(
            auth={
                "client_token": "s.NewToken",
                "accessor": "NewAccessor",
                "policies": ["default"],
                "lease_duration": 60,
            }
        ),
    )
    (entry,) = entries(log)
    assert entry["auth"]["accessor"] == ACCESSOR
    assert entry["request"]["client_token_accessor"] == ACCESSOR
    assert entry["response"]["auth"]["accessor"] == "NewAccessor"
    assert entry["auth"]["client_token"] == broker.hash("file", ROOT_TOKEN)
    assert entry["response"]["auth"]["client_token"] == broker.hash("file", "s.NewToken")
    assert entry["response"]["auth"]["token_ttl"] == 60


def test_non_hmac_keys(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    req = kv_write(password=SECRET, username="alice")
    broker.log_response(
        req,
        AUTH,
        Response(data={"username": "alice", "password": SECRET}),
        non_hmac_request_keys=["username"],
        non_hmac_response_keys=["username"],
    )
    (entry,) = entries(log)
    assert entry["request"]["data"]["data"]["username"] == "alice"
    assert entry["request"]["data"]["data"]["password"] == broker.hash("file", SECRET)
    assert entry["response"]["data"] == {"username": "alice", "password": broker.hash("file", SECRET)}


def test_elide_list_responses(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log), "elide_list_responses": "true"})
    req = Request(operation="list", path="secret/metadata/", mount_point="secret/", mount_type="kv")
    broker.log_response(req, None, Response(data={"keys": ["a", "b", "c"], "key_info": {"a": {}}}))
    (entry,) = entries(log)
    assert entry["response"]["data"] == {"keys": 3, "key_info": 1}


# --- Vault's entry shapes ------------------------------------------------------------


def test_entry_shapes_mirror_openbao(broker, tmp_path):
    """Key order and presence as in lines written by OpenBao 2.7 for the same calls
    (less client_id, mount_running_version and remote_port, which Strongroom has not)."""
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    req = kv_write()
    broker.log_request(req, AUTH)
    broker.log_response(req, AUTH, Response(data={"version": 1}, lease_id="secret/x/abc", warnings=["w"]))
    request, response = entries(log)
    assert list(request) == ["time", "type", "auth", "request"]
    assert list(request["auth"]) == [
        "client_token",
        "accessor",
        "display_name",
        "policies",
        "token_policies",
        "metadata",
        "token_type",
    ]
    assert list(request["request"]) == [
        "id",
        "operation",
        "mount_point",
        "mount_type",
        "mount_accessor",
        "mount_class",
        "client_token",
        "client_token_accessor",
        "namespace",
        "path",
        "data",
        "remote_address",
    ]
    assert list(response) == ["time", "type", "auth", "request", "response"]
    assert response["response"] == {
        "mount_point": "secret/",
        "mount_type": "kv",
        "mount_accessor": "kv_0a1b2c3d",
        "mount_class": "secret",
        "secret": {"lease_id": "secret/x/abc"},
        "data": {"version": 1},
        "warnings": ["w"],
    }
    assert request["request"]["id"] == response["request"]["id"] == req.request_id


def test_refused_request_and_error_response(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    req = Request(
        operation="read",
        path="secret/data/app",
        client_token="bogus-token",
        mount_point="secret/",
        mount_type="kv",
        request_id="r-1",
    )
    broker.log_request(req, None, error="permission denied")
    broker.log_response(req, None, None, error="permission denied")
    request, response = entries(log)
    assert request["auth"] == {"token_type": "default"}
    assert request["error"] == "permission denied"
    assert "client_token_accessor" not in request["request"]
    assert request["request"]["client_token"] == broker.hash("file", "bogus-token")
    assert response["response"]["data"] == {"error": broker.hash("file", "permission denied")}
    assert response["error"] == "permission denied"


def test_wrap_ttl_is_the_header_in_seconds(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    req = kv_write()
    req.wrap_ttl = "1d"  # parseutil.ParseDurationSecond, as core/wrapping.py reads it
    broker.log_request(req, AUTH)
    (request,) = entries(log)
    assert request["request"]["wrap_ttl"] == 86400


def test_auth_response_entry(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    req = Request(
        operation="update",
        path="auth/token/create",
        data={"policies": ["default"]},
        client_token=ROOT_TOKEN,
        mount_point="auth/token/",
        mount_type="token",
        mount_accessor="auth_token_1",
    )
    broker.log_response(
        req,
        AUTH,
        Response(
            auth={
                "client_token": "s.Created",
                "accessor": "acc-created",
                "policies": ["default"],
                "token_policies": ["default"],
                "metadata": {"team": "x"},
                "lease_duration": 2764800,
                "renewable": True,
                "token_type": "service",
            }
        ),
    )
    (entry,) = entries(log)
    assert entry["request"]["mount_class"] == "auth"
    assert entry["response"]["auth"] == {
        "client_token": broker.hash("file", "s.Created"),
        "accessor": broker.hash("file", "acc-created"),
        "policies": ["default"],
        "token_policies": ["default"],
        "metadata": {"team": "x"},
        "token_type": "service",
        "token_ttl": 2764800,
    }
    assert list(entry["response"])[0] == "auth"


def test_time_is_rfc3339_utc():
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)) == "2026-01-02T03:04:05.12Z"
    plus_two = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2026, 1, 2, 5, 4, 5, 1, tzinfo=plus_two)) == "2026-01-02T03:04:05.000001Z"


def test_awkward_values_stay_one_valid_line(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("raw", "file", "", {"file_path": str(log), "log_raw": "true"})
    broker.enable("hashed", "file", "", {"file_path": str(tmp_path / "h.log")})
    odd = {
        "nl": "a\nb\r\n",
        "uni": "żółw \u2028",
        "lone": "\udc80",
        "bytes": b"\x00\xff",
        "when": datetime(2026, 1, 1, tzinfo=UTC),
        "tuple": (1, "x"),
        "nan": float("nan"),
    }
    broker.log_request(kv_write(**odd), AUTH)
    for path in (log, tmp_path / "h.log"):
        assert len(path.read_bytes().splitlines()) == 2  # probe + one entry
    (entry,) = entries(log)
    assert entry["request"]["data"]["data"]["nl"] == "a\nb\r\n"
    assert entry["request"]["data"]["data"]["bytes"] == "AP8="
    assert entry["request"]["data"]["data"]["when"] == "2026-01-01T00:00:00Z"


# --- devices: stdout, discard, rotation ---------------------------------------------------


def test_stdout_and_discard(backend):
    read_end, write_end = os.pipe()
    broker = AuditBroker(backend, Clock(), stdout_fd=write_end)
    broker.enable("out", "file", "", {"file_path": "STDOUT"})
    broker.enable("null", "file", "", {"file_path": "discard"})
    broker.log_request(kv_write(), AUTH)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        written = [json.loads(line) for line in f.read().splitlines()]
    assert [e["request"]["path"] for e in written] == ["sys/audit/test", "secret/data/app"]
    broker.close()


def test_reopen_after_rotation(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    broker.log_request(kv_write(), AUTH)
    os.rename(log, tmp_path / "audit.log.1")
    broker.reopen()
    assert log.exists() and stat.S_IMODE(os.stat(log).st_mode) == 0o600
    broker.log_request(kv_write(), AUTH)
    assert len(entries(tmp_path / "audit.log.1")) == 1
    assert len(entries(log)) == 1


def test_rotation_without_reopen_is_noticed(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log)})
    os.rename(log, tmp_path / "audit.log.1")
    broker.log_request(kv_write(), AUTH)
    assert len(entries(log)) == 1
    log.unlink()
    broker.log_request(kv_write(), AUTH)
    assert len(entries(log)) == 1


# --- failure semantics -----------------------------------------------------------------


def test_no_devices_is_a_no_op(broker):
    broker.log_request(kv_write(), AUTH)
    broker.log_response(kv_write(), AUTH, Response(data={"x": SECRET}))


def test_every_device_failing_refuses_the_request(broker, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    logs = tmp_path / "logs"
    logs.mkdir()
    broker.enable("file", "file", "", {"file_path": str(logs / "audit.log")})
    shutil.rmtree(logs)
    with pytest.raises(AuditFailed) as exc:
        broker.log_request(kv_write(), AUTH)
    with pytest.raises(AuditFailed):
        broker.log_response(kv_write(), AUTH, Response(data={"password": SECRET}))
    for text in (str(exc.value), repr(exc.value), caplog.text):
        assert SECRET not in text and ROOT_TOKEN not in text and ACCESSOR not in text
    assert "audit device file/" in caplog.text
    logs.mkdir()  # the device heals once its file can be opened again
    broker.log_request(kv_write(), AUTH)
    assert len(entries(logs / "audit.log")) == 1


def test_one_of_two_devices_failing_is_enough(broker, tmp_path):
    bad, good = tmp_path / "bad", tmp_path / "good"
    bad.mkdir()
    good.mkdir()
    broker.enable("bad", "file", "", {"file_path": str(bad / "audit.log")})
    broker.enable("good", "file", "", {"file_path": str(good / "audit.log")})
    shutil.rmtree(bad)
    broker.log_request(kv_write(), AUTH)
    broker.log_response(kv_write(), AUTH, Response(data={"v": 1}))
    assert [e["type"] for e in entries(good / "audit.log")] == ["request", "response"]


def test_device_that_cannot_open_at_load_fails_closed(backend, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    first = AuditBroker(backend, Clock())
    first.enable("file", "file", "", {"file_path": str(logs / "audit.log")})
    first.close()
    shutil.rmtree(logs)
    other_node = AuditBroker(backend, Clock())
    assert list(other_node.list()) == ["file/"]
    with pytest.raises(AuditFailed):
        other_node.log_request(kv_write(), AUTH)


# --- concurrency ------------------------------------------------------------------------


def _assert_whole_lines(path, expected: int) -> None:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    parsed = [json.loads(line) for line in raw.splitlines()]
    assert len([e for e in parsed if e["request"]["path"] != "sys/audit/test"]) == expected


def test_threads_write_whole_lines(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log), "log_raw": "true"})
    broker.enable("hashed", "file", "", {"file_path": str(tmp_path / "hashed.log")})
    big = "x" * 20000  # long lines make torn writes visible

    def work(n):
        for i in range(150):
            broker.log_request(kv_write(payload=big, who=f"{n}-{i}"), AUTH)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _assert_whole_lines(log, 8 * 150)
    _assert_whole_lines(tmp_path / "hashed.log", 8 * 150)


def _child_logs(backend, count):
    broker = AuditBroker(backend, Clock())  # a worker process loading the table from storage
    big = "y" * 30000
    for i in range(count):
        broker.log_request(kv_write(payload=big, i=i), AUTH)
    broker.close()


def test_processes_write_whole_lines(backend, tmp_path):
    log = tmp_path / "audit.log"
    parent = AuditBroker(backend, Clock())
    parent.enable("file", "file", "", {"file_path": str(log), "log_raw": "true"})
    parent.close()
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_child_logs, args=(backend, 100)) for _ in range(4)]
    for c in children:
        c.start()
    for c in children:
        c.join(60)
        assert c.exitcode == 0
    _assert_whole_lines(log, 4 * 100)


def test_stored_device_this_node_cannot_run_fails_closed(backend, tmp_path):
    from strongroom.core.audit import AuditEntry, _storage_key

    entry = AuditEntry(
        path="future/",
        type="file",
        uuid="u-1",
        salt="00" * 32,
        options={"file_path": str(tmp_path / "f.log"), "format": "cbor"},
    )
    record = json.loads(entry.to_json()) | {"added_by_a_later_version": 1}
    backend.put(_storage_key("future/"), json.dumps(record).encode())
    broker = AuditBroker(backend, Clock())
    assert list(broker.list()) == ["future/"]
    assert broker.hash("future", SECRET).startswith("hmac-sha256:")
    with pytest.raises(AuditFailed):
        broker.log_request(kv_write(), AUTH)
    broker.close()


def test_path_is_vaults_alias_for_file_path(broker, tmp_path):
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"path": str(log)})
    broker.log_request(kv_write(), AUTH)
    assert len(entries(log)) == 1


# --- file safety (CVE-2025-6000 class) ---------------------------------------------------


def _victim(tmp_path):
    """A file the audit device must never touch: 0600, with content."""
    victim = tmp_path / "victim"
    victim.write_text("root:x:0:0\n")
    os.chmod(victim, 0o600)
    return victim


def _untouched(victim) -> bool:
    return victim.read_text() == "root:x:0:0\n" and stat.S_IMODE(os.stat(victim).st_mode) == 0o600


def test_a_symlink_at_file_path_is_never_followed(broker, backend, tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / "audit.log"
    link.symlink_to(victim)
    with pytest.raises(InvalidRequest) as exc:
        broker.enable("file", "file", "", {"file_path": str(link), "mode": "0777"})
    assert "symbolic link" in str(exc.value)
    assert _untouched(victim)
    assert broker.list() == {} and backend.list("") == []


def test_a_file_swapped_for_a_symlink_after_enable_is_not_followed(broker, tmp_path):
    victim = _victim(tmp_path)
    log = tmp_path / "audit.log"
    broker.enable("file", "file", "", {"file_path": str(log), "mode": "0666"})
    log.unlink()
    log.symlink_to(victim)
    with pytest.raises(AuditFailed):  # the device is unusable: fail closed, write nowhere
        broker.log_request(kv_write(), AUTH)
    broker.reopen()
    with pytest.raises(AuditFailed):
        broker.log_request(kv_write(), AUTH)
    assert _untouched(victim)


def test_a_stored_device_pointing_at_a_symlink_fails_closed_on_load(backend, tmp_path):
    victim = _victim(tmp_path)
    log = tmp_path / "audit.log"
    first = AuditBroker(backend, Clock())
    first.enable("file", "file", "", {"file_path": str(log)})
    first.close()
    log.unlink()
    log.symlink_to(victim)
    other_worker = AuditBroker(backend, Clock())
    with pytest.raises(AuditFailed):
        other_worker.log_request(kv_write(), AUTH)
    assert _untouched(victim)
    other_worker.close()


def test_a_fifo_is_refused_without_blocking(broker, tmp_path):
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # with a reader, opening it for writing would succeed
    try:
        with pytest.raises(InvalidRequest) as exc:
            broker.enable("file", "file", "", {"file_path": str(fifo)})
        assert "not a regular file" in str(exc.value)
        assert os.read(reader, 100) == b""
    finally:
        os.close(reader)
    with pytest.raises(InvalidRequest):  # and without a reader it neither blocks nor opens
        broker.enable("file", "file", "", {"file_path": str(fifo)})
    assert broker.list() == {}


@pytest.mark.parametrize("target", ["/dev/null", "directory"])
def test_devices_and_directories_are_refused(broker, tmp_path, target):
    if target == "directory":
        target = str(tmp_path)
    with pytest.raises(InvalidRequest) as exc:
        broker.enable("file", "file", "", {"file_path": target, "mode": "0777"})
    assert "not a regular file" in str(exc.value)
    assert broker.list() == {}


def test_a_hard_link_to_another_file_is_refused(broker, tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / "audit.log"
    os.link(victim, link)
    with pytest.raises(InvalidRequest) as exc:
        broker.enable("file", "file", "", {"file_path": str(link), "mode": "0777"})
    assert "hard link" in str(exc.value)
    assert _untouched(victim)


@pytest.fixture
def audit_dir(tmp_path):
    directory = tmp_path / "audit"
    directory.mkdir()
    return directory


@pytest.fixture
def confined(backend, audit_dir):
    b = AuditBroker(backend, Clock(), file_directory=str(audit_dir))
    yield b
    b.close()


@pytest.mark.parametrize(
    "file_path",
    [
        "{tmp}/victim",
        "{dir}/../victim",
        "{dir}/sub/../../victim",
        "{dir}",
        "{dir}x/audit.log",
        "relative.log",
        "{dir}/a/../b.log",
    ],
)
def test_file_path_outside_audit_file_directory_is_refused(confined, tmp_path, audit_dir, file_path):
    victim = _victim(tmp_path)
    (audit_dir / "sub").mkdir()
    with pytest.raises(InvalidRequest) as exc:
        confined.enable("file", "file", "", {"file_path": file_path.format(tmp=tmp_path, dir=audit_dir)})
    assert f'audit_file_directory "{audit_dir}"' in str(exc.value)
    assert _untouched(victim)
    assert confined.list() == {}


def test_file_path_inside_audit_file_directory_works(confined, audit_dir):
    (audit_dir / "team").mkdir()
    confined.enable("file", "file", "", {"file_path": str(audit_dir / "team" / "audit.log")})
    confined.enable("out", "file", "", {"file_path": "discard"})  # stdout and discard are not files
    confined.log_request(kv_write(), AUTH)
    assert len(entries(audit_dir / "team" / "audit.log")) == 1


def test_a_symlinked_subdirectory_cannot_lead_out_of_audit_file_directory(confined, tmp_path, audit_dir):
    outside = tmp_path / "outside"
    outside.mkdir()
    (audit_dir / "logs").symlink_to(outside)
    with pytest.raises(InvalidRequest) as exc:
        confined.enable("file", "file", "", {"file_path": str(audit_dir / "logs" / "audit.log")})
    assert "symbolic links are never followed" in str(exc.value)
    assert list(outside.iterdir()) == []


def test_a_device_stored_before_the_directory_was_set_fails_closed(backend, tmp_path, audit_dir):
    log = tmp_path / "audit.log"
    unconfined = AuditBroker(backend, Clock())
    unconfined.enable("file", "file", "", {"file_path": str(log)})
    unconfined.close()
    confined = AuditBroker(backend, Clock(), file_directory=str(audit_dir))
    with pytest.raises(AuditFailed):
        confined.log_request(kv_write(), AUTH)
    assert entries(log) == []
    confined.close()


# --- declared devices (the server configuration's audit blocks) ---------------------------


def declared(path: str, file_path: str, **kwargs):
    from strongroom.config.model import AuditDeviceConfig

    options = kwargs.pop("options", {})
    return AuditDeviceConfig(
        type="file", path=path, options=tuple(sorted({"file_path": file_path, **options}.items())), **kwargs
    )


def test_declared_devices_are_enabled_and_log(backend, broker, tmp_path):
    log = tmp_path / "declared.log"
    assert broker.sync_declared([declared("to-file/", str(log), description="from config", local=True)]) is True
    assert broker.list() == {
        "to-file/": {
            "type": "file",
            "description": "from config",
            "local": True,
            "options": {"file_path": str(log)},
            "path": "to-file/",
        }
    }
    worker = AuditBroker(backend, Clock())  # every worker and node loads it from the table
    worker.log_request(kv_write(), AUTH)
    assert [e["request"]["path"] for e in lines(log)] == ["secret/data/app"]
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    worker.close()


def test_declaring_again_is_idempotent_and_keeps_the_salt(backend, broker, tmp_path):
    devices = [declared("a/", str(tmp_path / "a.log")), declared("b/", "discard")]
    assert broker.sync_declared(devices) is True
    stored = {key: backend.get(key) for key in backend.list("device/")}
    salt = broker.hash("a", SECRET)
    another_node = AuditBroker(backend, Clock())  # another node, or this one restarted
    assert another_node.sync_declared(devices) is False
    assert {key: backend.get(key) for key in backend.list("device/")} == stored
    assert another_node.hash("a", SECRET) == salt
    another_node.close()


def test_a_changed_declaration_is_updated_in_place(broker, tmp_path):
    broker.sync_declared([declared("a/", str(tmp_path / "a.log"))])
    salt = broker.hash("a", SECRET)
    assert broker.sync_declared([declared("a/", str(tmp_path / "b.log"), description="moved")]) is True
    assert broker.list()["a/"]["options"] == {"file_path": str(tmp_path / "b.log")}
    assert broker.list()["a/"]["description"] == "moved"
    assert broker.hash("a", SECRET) == salt
    broker.log_request(kv_write(), AUTH)
    assert len(lines(tmp_path / "b.log")) == 1


def test_a_device_no_longer_declared_is_removed_and_api_devices_stay(broker, tmp_path):
    broker.enable("by-api", "file", "", {"file_path": "discard"})
    broker.sync_declared([declared("a/", "discard"), declared("b/", "discard")])
    assert sorted(broker.list()) == ["a/", "b/", "by-api/"]
    assert broker.sync_declared([declared("b/", "discard")]) is True
    assert sorted(broker.list()) == ["b/", "by-api/"]
    assert broker.sync_declared([]) is True
    assert sorted(broker.list()) == ["by-api/"]


def test_declared_devices_cannot_be_disabled_or_overwritten_over_the_api(backend, broker, tmp_path):
    log = tmp_path / "declared.log"
    broker.sync_declared([declared("to-file/", str(log))])
    with pytest.raises(InvalidRequest) as exc:
        broker.disable("to-file")
    assert "declared in the server configuration" in str(exc.value)
    with pytest.raises(InvalidRequest) as exc:
        broker.enable("to-file", "file", "", {"file_path": str(tmp_path / "elsewhere.log")})
    assert "declared in the server configuration" in str(exc.value)
    assert broker.list()["to-file/"]["options"] == {"file_path": str(log)}
    assert list(AuditBroker(backend, Clock()).list()) == ["to-file/"]


def test_a_declared_device_does_not_replace_an_api_created_one(broker, caplog):
    broker.enable("shared", "file", "by the api", {"file_path": "discard"})
    assert broker.sync_declared([declared("shared/", "stdout")]) is False
    assert broker.list()["shared/"]["description"] == "by the api"
    assert "overlaps the API-created device shared/" in caplog.text
    broker.disable("shared")  # still the API's to disable
    assert broker.list() == {}


def test_a_declared_symlink_is_stored_but_never_followed(broker, tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / "audit.log"
    link.symlink_to(victim)
    broker.sync_declared([declared("to-file/", str(link), options={"mode": "0777"})])
    with pytest.raises(AuditFailed):  # declared but unusable: requests fail closed
        broker.log_request(kv_write(), AUTH)
    assert _untouched(victim)


def test_declared_devices_respect_audit_file_directory(backend, tmp_path, audit_dir):
    victim = _victim(tmp_path)
    confined = AuditBroker(backend, Clock(), file_directory=str(audit_dir))
    confined.sync_declared([declared("out/", str(victim))])
    with pytest.raises(AuditFailed):
        confined.log_request(kv_write(), AUTH)
    assert _untouched(victim)
    confined.close()


@pytest.mark.parametrize(
    "options", [{"prefix": "#!/bin/sh\n"}, {"prefix": "x"}, {"log_raw": "maybe"}, {"format": "xml"}]
)
def test_a_declared_device_with_options_this_node_refuses_fails_closed(broker, tmp_path, options):
    log = tmp_path / "audit.log"
    broker.sync_declared([declared("to-file/", str(log), options=options)])
    with pytest.raises(AuditFailed):
        broker.log_request(kv_write(), AUTH)
    assert not log.exists() or log.read_text() == ""
