"""Locustfile: GET / against any local HTTP server (``--host``). Generator tests and benchmarks.

    locust -f loadtests/locustfile_trivial.py --headless -u 20 -t 10s --host http://127.0.0.1:8000 \\
        --nines-rate 500 --nines-out /tmp/trivial
"""
from loadtests import harness  # noqa: F401  (registers the nineslab options and listeners)
from loadtests.users.trivial import TrivialUser  # noqa: F401

__all__ = ["TrivialUser"]
