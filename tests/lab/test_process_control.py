"""Process faults on a real one-region lab: kill, pause/resume, stop/start and restart keep the
state file true, and a restarted process comes back on the same port with the same data."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request

import psutil
import pytest

from lab import process_control as pc
from lab.errors import LabError, UsageError
from lab.runtime import health
from lab.runtime.local import service_available
from lab.state import load_state
from tests.labstate import reusable_state_dir

pytestmark = [pytest.mark.infra, pytest.mark.slow]

SOLO = """\
schema: nineslab.topology/1
regions: [solo]
profiles: {quick: one region}
infrastructure:
  pg-{region}: {role: postgres, per_region: true}
  redis-{region}: {role: redis, per_region: true}
  nats-{region}: {role: nats, per_region: true}
services:
  chat-{region}-{n}:
    role: chat
    per_region: true
    replicas: {quick: 1}
    deps:
      postgres: {to: "pg-{region}", database: chat}
      redis: {to: "redis-{region}"}
      nats: {to: ["nats-{region}"]}
"""


@pytest.fixture(scope="module")
def solo():
    with reusable_state_dir("solo") as state_dir:
        topology = state_dir.parent / "solo.yaml"
        topology.write_text(SOLO)
        result = subprocess.run([sys.executable, "-m", "lab.cli", "up", "--topology", str(topology),
                                 "--state-dir", str(state_dir)], capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stderr[-3000:]
        yield state_dir


def sql_ok(url: str) -> bool:
    import asyncpg

    async def probe():
        conn = await asyncpg.connect(url, timeout=3)
        try:
            return await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = 'chat'") == 1
        finally:
            await conn.close()
    return asyncio.run(probe())


def test_region_processes(solo):
    state = load_state(solo)
    names = {p.name for p in pc.region_processes(state, "solo")}
    assert {"pg-solo", "redis-solo", "nats-solo"} <= names and "proxy" not in names


def test_kill_then_restart_a_server_keeps_port_and_data(solo):
    before = load_state(solo).process("pg-solo")
    pc.kill(solo, "pg-solo")
    killed = load_state(solo).process("pg-solo")
    assert killed.status == "killed" and not health.alive(killed) and not health.check(killed)
    assert not psutil.pid_exists(before.pid) or psutil.Process(before.pid).status() == psutil.STATUS_ZOMBIE
    pc.restart(solo, "pg-solo")
    after = load_state(solo).process("pg-solo")
    assert after.status == "running" and after.pid != before.pid
    assert after.ports == before.ports and after.data_dir == before.data_dir
    assert sql_ok(load_state(solo).endpoint("pg-solo"))        # the chat database survived


def test_pause_makes_a_server_unresponsive_until_resumed(solo):
    pc.pause(solo, "redis-solo")
    record = load_state(solo).process("redis-solo")
    assert record.status == "paused" and health.alive(record)
    assert psutil.Process(record.pid).status() == psutil.STATUS_STOPPED
    assert not health.answers(record, timeout=0.5)
    with pytest.raises(UsageError, match="already running"):
        pc.start(solo, "redis-solo")
    pc.resume(solo, "redis-solo")
    record = load_state(solo).process("redis-solo")
    assert record.status == "running" and health.check(record)


def test_stop_and_start_nats_node(solo):
    pc.stop(solo, "nats-solo")
    record = load_state(solo).process("nats-solo")
    assert record.status == "stopped" and not health.alive(record)
    with pytest.raises(UsageError, match="nats-solo is not running"):
        pc.pause(solo, "nats-solo")
    pc.start(solo, "nats-solo")
    record = load_state(solo).process("nats-solo")
    assert record.status == "running" and health.check(record)


@pytest.mark.skipif(not service_available("chat"), reason="system.chat is not built yet")
def test_kill_and_restart_a_chat_server(solo):
    record = load_state(solo).process("chat-solo-1")
    url = load_state(solo).endpoint("chat-solo-1")
    pc.kill(solo, "chat-solo-1")
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/healthz", timeout=2)
    pc.restart(solo, "chat-solo-1")
    again = load_state(solo).process("chat-solo-1")
    assert again.pid != record.pid and again.ports == record.ports and again.argv == record.argv
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as resp:
        assert resp.status == 200


def test_unknown_process_is_named(solo):
    with pytest.raises(LabError, match="no process named 'pg-mars'"):
        pc.kill(solo, "pg-mars")
