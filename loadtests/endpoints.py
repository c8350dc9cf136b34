"""Where the load goes: the lab's endpoints and token secret, read from the state file (contracts §1).

The state directory is ``--state-dir``, else ``$NINES_STATE_DIR``, else ``./.nines`` (the
shell resolves that; this module takes the directory). Only 127.0.0.1 endpoints are
accepted: load never leaves the machine.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lab.errors import LabError, UsageError


@dataclass(frozen=True)
class LabEndpoints:
    routers: list[str] = field(default_factory=list)      # http://127.0.0.1:P of each router
    chat: dict[str, str] = field(default_factory=dict)    # chat server name -> http URL
    analytics: str | None = None
    migration: str | None = None
    secret: bytes | None = None
    state_dir: str = ""


def regions_of(chat_servers: dict[str, str]) -> list[str]:
    """The lab's regions from its chat server names (``chat-us-east-1`` -> ``us-east``), in order."""
    out: list[str] = []
    for name in chat_servers:
        region = name[len("chat-"):].rsplit("-", 1)[0]
        if region not in out:
            out.append(region)
    return out or ["us-east", "eu-west", "ap-south"]


def default_state_dir(flag: str | None = None) -> Path:
    return Path(flag or os.environ.get("NINES_STATE_DIR") or ".nines")


def require_local(url: str, what: str) -> str:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise UsageError(f"{what} {url} is not on 127.0.0.1; load only goes to the local machine")
    return url.rstrip("/")


def load_endpoints(state_dir: Path) -> LabEndpoints:
    """The lab's endpoints from ``state_dir/state.json``; a missing lab is a :class:`LabError`."""
    from lab.state import load_state

    state = load_state(state_dir)
    eps = state.endpoints
    routers = [require_local(u, n) for n, u in sorted(eps.items()) if n.startswith("router")]
    chat = {n: require_local(u, n) for n, u in sorted(eps.items()) if n.startswith("chat-")}
    secret = None
    secret_file = getattr(state, "secret_file", None) or str(Path(state.state_dir) / "secret")
    try:
        secret = Path(secret_file).read_bytes()
    except OSError:
        secret = None
    return LabEndpoints(
        routers=routers, chat=chat,
        analytics=require_local(eps["analytics"], "analytics") if "analytics" in eps else None,
        migration=require_local(eps["migration"], "migration") if "migration" in eps else None,
        secret=secret, state_dir=str(state_dir))


def need(value: str | None, what: str, state_dir: str) -> str:
    if not value:
        raise LabError(f"the lab in {state_dir or '.nines'} has no {what} endpoint; "
                       f"is it up (`nines status`)?")
    return value
