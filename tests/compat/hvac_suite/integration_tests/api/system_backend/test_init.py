# Vendored from hvac (https://github.com/hvac/hvac) tests/integration_tests/api/system_backend/test_init.py
# at v2.4.0 (commit 2f1a58f754526b6baeee43d8763917d308ca2997).
# Copyright hvac contributors, Apache License 2.0 (tests/compat/hvac_suite/LICENSE).
# Adapted for Strongroom by tests/compat/hvac_suite/vendor.py: harness imports, left-out tests.
import logging
from unittest import TestCase

from tests.compat.hvac_suite.utils.hvac_integration_test_case import HvacIntegrationTestCase


class TestInit(HvacIntegrationTestCase, TestCase):
    def test_read_init_status(self):
        read_response = self.client.sys.read_init_status()
        logging.debug("read_response: %s" % read_response)
        self.assertTrue(expr=read_response["initialized"])

    def test_is_initialized(self):
        is_initialized_response = self.client.sys.is_initialized()
        logging.debug("is_initialized_response: %s" % is_initialized_response)
        self.assertTrue(expr=is_initialized_response)
