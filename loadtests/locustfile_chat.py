"""Locustfile: WebSocket chat users against a running lab (endpoints and secret from the state file).

    locust -f loadtests/locustfile_chat.py --headless -u 20 -t 30s               # closed model
    locust -f loadtests/locustfile_chat.py --headless -u 20 -t 30s --nines-rate 50 --nines-out out
"""
from loadtests import harness  # noqa: F401  (registers the nineslab options and listeners)
from loadtests.users.chat import ChatUser  # noqa: F401

__all__ = ["ChatUser"]
