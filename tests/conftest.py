"""Shared fixtures: real PostgreSQL, Redis and NATS servers on 127.0.0.1.

``servers`` gives a fresh group per test (stopped at teardown, also on failure);
``session_servers`` one group shared by a whole run, for tests that only read and write.
"""
from __future__ import annotations

import warnings

import pytest

from lab.servers.group import ServerGroup

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


@pytest.fixture
def servers(tmp_path):
    group = ServerGroup(tmp_path / "servers")
    try:
        yield group
    finally:
        group.close()


@pytest.fixture(scope="session")
def session_servers(tmp_path_factory):
    group = ServerGroup(tmp_path_factory.mktemp("session-servers"))
    try:
        yield group
    finally:
        group.close()
