"""``strongroom server -dev -config FILE``: the file's settings on the dev node."""

from __future__ import annotations

import pytest

from strongroom.cli import _dev_with_file
from strongroom.config import ConfigError, dev_config


def test_dev_with_file_adds_the_files_settings_and_keeps_the_dev_node(tmp_path):
    extra = tmp_path / "extra.hcl"
    extra.write_text(
        "unsafe_allow_api_audit_creation = true\n"
        'audit "file" "to-file" {\n  options {\n    file_path = "stdout"\n  }\n}\n'
    )
    dev = dev_config("127.0.0.1:18200", hostname="h")
    config = _dev_with_file(dev, str(extra))
    assert config.unsafe_allow_api_audit_creation is True
    assert [(d.path, d.options_dict) for d in config.audit] == [("to-file/", {"file_path": "stdout"})]
    assert (config.storage, config.listeners, config.api_addr, config.node_id, config.workers) == (
        dev.storage,
        dev.listeners,
        dev.api_addr,
        dev.node_id,
        1,
    )


def test_dev_with_file_refuses_a_storage_block(tmp_path):
    extra = tmp_path / "extra.hcl"
    extra.write_text('storage "consul" {}\n')
    with pytest.raises(ConfigError, match="storage"):
        _dev_with_file(dev_config("127.0.0.1:18200", hostname="h"), str(extra))
