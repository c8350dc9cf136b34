"""Fuzz the analytics API from its own OpenAPI schema (schemathesis): no answer is a 5xx."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

pytestmark = [pytest.mark.infra, pytest.mark.slow]


@pytest.fixture
def analytics_schema(env):
    svc = env.service()
    return schemathesis.openapi.from_url(svc.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("analytics_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call(timeout=30)
    assert response.status_code < 500, f"{case.method} {case.formatted_path} {case.query}: " \
                                       f"{response.status_code} {response.text[:300]}"
