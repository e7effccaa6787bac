"""Answers are rendered by jsoncodec (api/app.py): compact, exact for every value a client stored."""

from __future__ import annotations

import json


def test_a_kv_answer_is_compact_json_with_values_as_written(unsealed):
    unsealed.request("POST", "sys/mounts/kv", json={"type": "kv", "options": {"version": "2"}})
    data = {"big": 123456789012345678901234567890, "f": 0.1, "u": "☃ 😀 </a>", "z": None, "n": [1, -2]}
    written = unsealed.request("POST", "kv/data/x", body=json.dumps({"data": data}))
    assert written.status_code == 200, written.text
    read = unsealed.request("GET", "kv/data/x")
    assert read.status_code == 200
    raw = read.content
    # Vault's Go encoder writes no spaces; keys stay in the order Vault's answer has them.
    assert b'": ' not in raw and b'", "' not in raw
    assert list(json.loads(raw)) == [
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
    ]
    # Non-ASCII is written as UTF-8, and an integer beyond 64 bits keeps its digits.
    assert "☃ 😀 </a>".encode() in raw and b"123456789012345678901234567890" in raw
    assert json.loads(raw)["data"]["data"] == data


def test_an_error_answer_keeps_vaults_envelope(unsealed):
    result = unsealed.request("GET", "nothing/here")
    assert result.status_code in (403, 404)
    assert isinstance(json.loads(result.content)["errors"], list)
