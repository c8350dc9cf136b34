"""Shared fixtures: real PostgreSQL, Redis and NATS servers on 127.0.0.1.

``servers`` gives a fresh group per test (stopped at teardown, also on failure);
``session_servers`` one group shared by a whole run, for tests that only read and write.

Server directories live outside pytest's ``tmp_path``: pytest makes its base directory
private (mode 0700) at the start of every session, and PostgreSQL runs as its own system
user who must be able to reach its data directory.
"""
from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import pytest

from lab.servers.group import ServerGroup

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


@pytest.fixture
def server_dir():
    """A directory for server data that the PostgreSQL system user can reach; removed after."""
    path = Path(tempfile.mkdtemp(prefix="nineslab-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def servers(server_dir):
    group = ServerGroup(server_dir)
    try:
        yield group
    finally:
        group.close()


@pytest.fixture(scope="session")
def session_servers():
    path = Path(tempfile.mkdtemp(prefix="nineslab-session-"))
    group = ServerGroup(path)
    try:
        yield group
    finally:
        group.close()
        shutil.rmtree(path, ignore_errors=True)
