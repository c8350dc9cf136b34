"""Locustfile: analytics queries and dashboard sockets (endpoint from the state file).

    locust -f loadtests/locustfile_analytics.py --headless -u 6 -t 30s --nines-out out
"""
from loadtests import harness  # noqa: F401  (registers the nineslab options and listeners)
from loadtests.users.analytics import AnalyticsQueryUser, DashboardUser  # noqa: F401

__all__ = ["AnalyticsQueryUser", "DashboardUser"]
