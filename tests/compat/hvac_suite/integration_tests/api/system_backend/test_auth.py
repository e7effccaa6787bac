# Vendored from hvac (https://github.com/hvac/hvac) tests/integration_tests/api/system_backend/test_auth.py
# at v2.4.0 (commit 2f1a58f754526b6baeee43d8763917d308ca2997).
# Copyright hvac contributors, Apache License 2.0 (tests/compat/hvac_suite/LICENSE).
# Adapted for Strongroom by tests/compat/hvac_suite/vendor.py: harness imports, left-out tests.
from unittest import TestCase

from tests.compat.hvac_suite.utils.hvac_integration_test_case import HvacIntegrationTestCase


class TestAuth(HvacIntegrationTestCase, TestCase):
    TEST_AUTH_METHOD_TYPE = "github"
    TEST_AUTH_METHOD_PATH = "test-github"

    def tearDown(self):
        self.client.sys.disable_auth_method(path=self.TEST_AUTH_METHOD_PATH)
        super().tearDown()

    # Left out for Strongroom: test_auth_backend_manipulation: enables the GitHub auth method, which Strongroom does not offer.

    def test_tune_auth_backend(self):
        test_description = "this is a test auth backend"
        test_max_lease_ttl = 12345678
        self.client.sys.enable_auth_method(
            method_type="approle", path=self.TEST_AUTH_METHOD_PATH
        )

        expected_status_code = 204
        response = self.client.sys.tune_auth_method(
            path=self.TEST_AUTH_METHOD_PATH,
            description=test_description,
            max_lease_ttl=test_max_lease_ttl,
        )
        self.assertEqual(
            first=expected_status_code,
            second=response.status_code,
        )

        response = self.client.sys.read_auth_method_tuning(
            path=self.TEST_AUTH_METHOD_PATH
        )

        self.assertEqual(
            first=test_max_lease_ttl, second=response["data"]["max_lease_ttl"]
        )
