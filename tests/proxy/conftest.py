"""Fixtures for the fault proxy: a real server process per session (ours, and the real
``toxiproxy-server`` too when it is on PATH), upstream TCP servers on 127.0.0.1:0, and
an API client that deletes every proxy after each test."""
from __future__ import annotations

import shutil
import socket
from typing import Callable, Iterator

import httpx
import pytest

from proxy_helpers import ServerProcess, Upstream, echo, start_ours, start_real

SERVER_KINDS = ["nineslab"] + (["toxiproxy"] if shutil.which("toxiproxy-server") else [])


@pytest.fixture(scope="session", params=SERVER_KINDS)
def server(request, tmp_path_factory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "nineslab":
        proc = start_ours(tmp)
    else:
        proc = start_real(tmp, shutil.which("toxiproxy-server"))
    proc.kind = request.param
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def api(server) -> Iterator[httpx.Client]:
    client = httpx.Client(base_url=server.url, timeout=10)
    try:
        yield client
    finally:
        for name in list(client.get("/proxies").json()):
            client.delete(f"/proxies/{name}")
        client.close()


@pytest.fixture
def upstream_factory() -> Iterator[Callable[..., Upstream]]:
    made: list[Upstream] = []

    def make(handler: Callable[[socket.socket], None] = echo) -> Upstream:
        up = Upstream(handler)
        made.append(up)
        return up

    try:
        yield make
    finally:
        for up in made:
            up.close()


@pytest.fixture
def echo_upstream(upstream_factory) -> Upstream:
    return upstream_factory(echo)
