"""Scenarios: a name → the locustfiles to run, what they need from the lab, and defaults.

Pure data (no Locust import), so the CLI can validate a name and print choices without
paying for gevent. ``concurrency`` is the open model's pool of users per run (the most
operations in flight at once); ``users`` is the closed model's default population.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.errors import UsageError

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    locustfiles: tuple[str, ...]
    needs_lab: bool = True
    host_endpoint: str | None = None   # state endpoint passed as --host (HTTP users)
    rate: float = 20.0                 # default arrivals per second
    concurrency: int = 20              # open model: users in the pool
    users: int = 10                    # closed model: default users

    def locustfile_arg(self) -> str:
        return ",".join(str(HERE / f) for f in self.locustfiles)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("trivial", "GET / on --host (generator tests and benchmarks; no lab needed)",
             ("locustfile_trivial.py",), needs_lab=False, rate=200.0, concurrency=20),
    Scenario("chat", "WebSocket chat: route via a router, send, ack, deliver",
             ("locustfile_chat.py",), rate=20.0, concurrency=20, users=20),
    Scenario("analytics", "analytics queries and the dashboard socket",
             ("locustfile_analytics.py",), host_endpoint="analytics", rate=10.0, concurrency=10),
    Scenario("migration", "profile writes and reads on the migration service",
             ("locustfile_migration.py",), host_endpoint="migration", rate=20.0, concurrency=20),
    Scenario("mixed", "chat, analytics and migration together",
             ("locustfile_chat.py", "locustfile_analytics.py", "locustfile_migration.py"),
             rate=40.0, concurrency=40, users=30),
)}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, SCENARIOS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown scenario {name!r}{hint}; choose one of {', '.join(SCENARIOS)}") from None
