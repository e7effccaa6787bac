# Vendored from hvac (https://github.com/hvac/hvac) tests/integration_tests/api/system_backend/test_leader.py
# at v2.4.0 (commit 2f1a58f754526b6baeee43d8763917d308ca2997).
# Copyright hvac contributors, Apache License 2.0 (tests/compat/hvac_suite/LICENSE).
# Adapted for Strongroom by tests/compat/hvac_suite/vendor.py: harness imports, left-out tests.
from unittest import TestCase

from tests.compat.hvac_suite.utils.hvac_integration_test_case import HvacIntegrationTestCase


class TestLeader(HvacIntegrationTestCase, TestCase):
    def test_read_health_status(self):
        self.assertIn(
            member="ha_enabled",
            container=self.client.sys.read_leader_status(),
        )
