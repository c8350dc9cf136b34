"""How the lab starts a fault proxy server: the real ``toxiproxy-server`` when one is on
PATH, else ours (``python -m chaos.proxy serve``); or none at all when ``TOXIPROXY_URL``
names a server that is already running.
"""
from __future__ import annotations

import os
import shutil
import sys
from typing import Callable, Mapping
from urllib.parse import urlsplit

from lab.errors import UsageError

REAL_SERVER = "toxiproxy-server"


def server_command(host: str, port: int, *, seed: int | None = None,
                   which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The argv that starts a proxy server listening on ``host:port``."""
    real = which(REAL_SERVER)
    if real:
        argv = [real, "-host", host, "-port", str(port)]
    else:
        argv = [sys.executable, "-m", "chaos.proxy", "serve", "--host", host, "--port", str(port)]
    if seed is not None:
        argv += ["-seed" if real else "--seed", str(seed)]
    return argv


def server_kind(which: Callable[[str], str | None] = shutil.which) -> str:
    """``toxiproxy`` when the real server would be started, else ``nineslab`` (state file ``proxy.kind``)."""
    return "toxiproxy" if which(REAL_SERVER) else "nineslab"


def external_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """The API URL in ``TOXIPROXY_URL`` (a server the lab must use, not start), or None."""
    value = (environ.get("TOXIPROXY_URL") or "").strip()
    if not value:
        return None
    if "://" not in value:
        value = "http://" + value  # toxiproxy-cli accepts host:port too
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"TOXIPROXY_URL={environ.get('TOXIPROXY_URL')!r} is not an http URL; "
                         "set it like http://127.0.0.1:8474 or unset it")
    try:
        parts.port
    except ValueError as exc:
        raise UsageError(f"TOXIPROXY_URL={environ.get('TOXIPROXY_URL')!r} has a bad port; "
                         "set it like http://127.0.0.1:8474") from exc
    return value.rstrip("/")
