"""Two chat regions (us-east, eu-west; one server each) on a 3-node NATS cluster whose routes
pass the fault proxy (a third node, ap-south, keeps the quorum), with fast presence settings."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from lab.servers.group import ServerGroup
from system.chat.partition_lab import PartitionLab

REGIONS = ["us-east", "eu-west"]
SETTINGS = {"presence_heartbeat": 0.2, "presence_stale_after": 1.5, "breaker_reset": 0.5,
            "dep_check_interval": 0.2, "ack_wait": 2.0, "redelivery_delay": 0.3}


@pytest.fixture(scope="module")
def presence_lab():
    # not under pytest's basetemp: PostgreSQL runs as its own user and must reach its directory
    root = Path(tempfile.mkdtemp(prefix="nineslab-test-presence-"))
    group = ServerGroup(root)
    lab = PartitionLab(group, REGIONS, extra_nats_regions=["ap-south"])
    try:
        chat = lab.start()
        for region in REGIONS:
            chat.start_chat(f"chat-{region}-1", region, SETTINGS, wait=False)
        for region in REGIONS:
            chat.wait_ready(f"chat-{region}-1")
        yield lab
    finally:
        lab.close()
        group.close()
        shutil.rmtree(root, ignore_errors=True)
