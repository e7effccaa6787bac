"""A seal drops the engines and every backend's cached key material (sdk/sealing.py):
a sealed process keeps no transit key parsed or loaded until the next unseal."""

from __future__ import annotations

from strongroom.engines.transit import asymmetric
from tests.helpers.unit_node import Node


def test_a_seal_drops_the_engines_and_the_loaded_private_keys():
    node = Node()
    node.init(1, 1)
    node.unseal()
    assert node.request("POST", "sys/mounts/transit", json={"type": "transit"}).status_code == 204
    assert node.request("POST", "transit/keys/signer", json={"type": "ecdsa-p256"}).status_code in (200, 204)
    signed = node.request("POST", "transit/sign/signer", json={"input": "aGVsbG8="})
    assert signed.status_code == 200, signed.text
    assert asymmetric.load.cache_info().currsize > 0
    assert node.core._engines

    assert node.request("PUT", "sys/seal").status_code == 204
    assert node.request("GET", "transit/keys/signer").status_code == 503  # the request that sees the seal
    assert node.core._engines == {}
    assert asymmetric.load.cache_info().currsize == 0

    node.unseal()
    again = node.request("POST", "transit/sign/signer", json={"input": "aGVsbG8="})
    assert again.status_code == 200, again.text
