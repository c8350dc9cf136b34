"""Service discovery by file: the members of a role (the chat servers) that routers should
health-check, in Prometheus' ``file_sd`` format, which many tools already read::

    [{"targets": ["127.0.0.1:40011"],
      "labels": {"name": "chat-us-east-1", "region": "us-east", "url": "http://127.0.0.1:40011"}}]

The runtime writes ``<state_dir>/discovery/<role>.json`` at ``up``; the autoscaler rewrites it
when a replica joins (after it is ready) or leaves (before it is stopped, so routers stop
sending users to it first). Writes are atomic (temp file + rename): a router re-reading the
file never sees half of it. Readers: ``system.router.discovery``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lab.state import LabState, write_json_atomically


@dataclass(frozen=True)
class Member:
    name: str
    region: str | None
    url: str                        # where routers health-check it (http://host:port)


def path(state_dir: Path | str, role: str) -> Path:
    return Path(state_dir) / "discovery" / f"{role}.json"


def write(state_dir: Path | str, role: str, members: list[Member]) -> Path:
    """Replace the member list of ``role`` atomically."""
    groups = [{"targets": [urlsplit(m.url).netloc], "labels": {"name": m.name, "region": m.region, "url": m.url}}
              for m in members]
    return write_json_atomically(path(state_dir, role), groups)


def of_state(state: LabState, role: str) -> list[Member]:
    """The members a lab state implies: every process of ``role`` with an endpoint that is not
    leaving (``draining``)."""
    return [Member(r.name, r.region, state.endpoints[r.name]) for r in state.processes_by(role=role)
            if r.name in state.endpoints and not getattr(r, "draining", False)]
