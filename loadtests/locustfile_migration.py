"""Locustfile: profile writes and reads on the migration service (endpoint from the state file).

    locust -f loadtests/locustfile_migration.py --headless -u 10 -t 30s --nines-out out
"""
from loadtests import harness  # noqa: F401  (registers the nineslab options and listeners)
from loadtests.users.migration import ProfileUser  # noqa: F401

__all__ = ["ProfileUser"]
