"""A chat lab on real servers: two regions (own PostgreSQL and Redis each), a 3-node NATS
JetStream cluster, chat servers and a router started as subprocesses exactly as the runtime does."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from lab.servers.group import ServerGroup
from system.chat.devlab import ChatLab

REGIONS = ["us-east", "eu-west"]
FAST_ROUTER = {"check_interval": 0.2, "failure_threshold": 2, "check_timeout": 0.5, "route_ttl": 5}
CHAT_SETTINGS = {"ack_wait": 2.0, "breaker_reset": 0.5, "dep_check_interval": 0.2, "redelivery_delay": 0.3,
                 "rate_limit_per_second": 5, "rate_limit_burst": 10, "flood_close_after": 30,
                 "max_message_bytes": 4096}


def make_lab(root, replicas: dict[str, int]) -> tuple[ServerGroup, ChatLab]:
    group = ServerGroup(root)
    try:
        lab = ChatLab(group, REGIONS)
        lab.start_infra(3)
        names = []
        for region, n in replicas.items():
            for i in range(1, n + 1):
                name = f"chat-{region}-{i}"
                lab.start_chat(name, region, CHAT_SETTINGS, wait=False)
                names.append(name)
        for name in names:
            lab.wait_ready(name)
        lab.start_router("router-1", FAST_ROUTER, wait=False)
        lab.start_router("router-2", FAST_ROUTER, wait=False)
        lab.wait_ready("router-1")
        lab.wait_ready("router-2")
    except BaseException:
        group.close()
        raise
    return group, lab


def private_root() -> Path:
    # not under pytest's basetemp: a concurrent pytest session makes /tmp/pytest-of-<user> 0700,
    # which locks out PostgreSQL running as its own user
    return Path(tempfile.mkdtemp(prefix="nineslab-chat-"))


@pytest.fixture(scope="module")
def chat_lab():
    root = private_root()
    group, lab = make_lab(root, {"us-east": 1, "eu-west": 1})
    try:
        yield lab
    finally:
        group.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def ha_lab():
    """A lab for destructive tests: two replicas in us-east, one in eu-west."""
    root = private_root()
    group, lab = make_lab(root, {"us-east": 2, "eu-west": 1})
    try:
        yield lab
    finally:
        group.close()
        shutil.rmtree(root, ignore_errors=True)
