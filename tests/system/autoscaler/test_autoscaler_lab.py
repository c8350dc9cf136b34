"""The autoscaler on a real one-region lab (`nines up` with PostgreSQL, Redis, NATS, a chat server,
a router and the autoscaler): connections crossing the target add a replica that the router
finds through discovery and routes users to; low load removes it after the cooldown, drained
first, and its client reconnects and resumes without loss; `nines down` stops every replica,
also those the autoscaler added."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import psutil
import pytest

from lab.state import find_state, load_state
from system.chat.client import ChatClient
from system.common.auth import issue_token
from tests.labstate import nines, reusable_state_dir
from tests.waiting import wait_for

pytestmark = [pytest.mark.infra, pytest.mark.slow]

TOPOLOGY = """\
schema: nineslab.topology/1
regions: [a]
profiles: {quick: autoscaler test}
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
    autoscale:
      min: 1
      max: 2
      metric: connections
      target_per_replica: 4
      scale_out_cooldown_seconds: 0
      scale_in_cooldown_seconds: 2
      evaluation_interval_seconds: 0.5
      drain_timeout_seconds: 10
  router:
    role: router
    peers: chat
    settings: {check_interval_seconds: 0.5, unhealthy_after: 2}
"""


def events(state_dir: Path) -> list[dict]:
    path = state_dir / "events" / "autoscaler.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def event_states(state_dir: Path, subject: str) -> list[str]:
    return [e["state"] for e in events(state_dir) if e["subject"] == subject]


@pytest.fixture(scope="module")
def lab():
    with reusable_state_dir("autoscaler") as state_dir:
        topology = state_dir.parent / "autoscale.yaml"
        topology.write_text(TOPOLOGY)
        (state_dir / "events").mkdir(parents=True, exist_ok=True)
        for old in (state_dir / "events").glob("*.jsonl"):
            old.unlink()
        result = nines("up", "--topology", str(topology), "--state-dir", str(state_dir))
        assert result.returncode == 0, result.stderr[-3000:]
        yield state_dir


def clients(state_dir: Path, users: list[str]) -> list[ChatClient]:
    state = load_state(state_dir)
    secret = Path(state.secret_file).read_bytes()
    return [ChatClient(u, issue_token(secret, u), routers=[state.endpoint("router")]) for u in users]


def test_scale_out_routing_scale_in_with_resume_and_down(lab):
    state_dir = lab

    async def scenario() -> None:
        crowd = clients(state_dir, [f"crowd{i}@a" for i in range(10)])
        await asyncio.gather(*(c.connect() for c in crowd))     # 10 connections, target 4 a replica
        await asyncio.to_thread(wait_for, lambda: "routed" in event_states(state_dir, "chat-a-2"), "chat-a-2 routed")
        assert event_states(state_dir, "a")[0] == "scale_out"
        assert load_state(state_dir).process("chat-a-2").status == "running"

        router = load_state(state_dir).endpoint("router")
        served = {httpx.get(f"{router}/route", params={"user": f"u{i}@a"}).json()["server_name"] for i in range(20)}
        assert served == {"chat-a-1", "chat-a-2"}, served

        # a receiver on the new replica and a sender on the old one; the crowd leaves
        mover = next(u for u in (f"m{i}@a" for i in range(50))
                     if httpx.get(f"{router}/route", params={"user": u}).json()["server_name"] == "chat-a-2")
        sender_user = next(u for u in (f"s{i}@a" for i in range(50))
                           if httpx.get(f"{router}/route", params={"user": u}).json()["server_name"] == "chat-a-1")
        receiver, sender = clients(state_dir, [mover, sender_user])
        await asyncio.gather(receiver.connect(), sender.connect())
        await asyncio.gather(*(c.close() for c in crowd))
        await sender.send(mover, "before the scale-in")
        assert (await receiver.receive())["body"] == "before the scale-in"

        await asyncio.to_thread(wait_for, lambda: "stopped" in event_states(state_dir, "chat-a-2"),
                                "chat-a-2 stopped")
        states = event_states(state_dir, "chat-a-2")
        assert states.index("draining") < states.index("drained") < states.index("stopped"), states
        assert "chat-a-2" not in load_state(state_dir).processes
        assert "chat-a-2" not in httpx.get(f"{router}/status").json()["servers"]
        ack = await sender.send(mover, "after the scale-in")      # the receiver resumed on chat-a-1
        got = [await receiver.receive(timeout=20)]
        while got[-1]["id"] != ack["id"]:      # the resume may replay the earlier message first
            got.append(await receiver.receive(timeout=20))
        assert {m["body"] for m in got} <= {"before the scale-in", "after the scale-in"}

        # scaled out again, then `nines down`: nothing of the lab may survive
        crowd = clients(state_dir, [f"again{i}@a" for i in range(10)])
        await asyncio.gather(*(c.connect() for c in crowd))
        await asyncio.to_thread(wait_for, lambda: event_states(state_dir, "chat-a-2").count("ready") == 2,
                                "chat-a-2 added again")
        await asyncio.gather(*(c.close() for c in crowd + [receiver, sender]))

    asyncio.run(scenario())
    pids = [(r.pid, r.create_time) for r in load_state(state_dir).processes.values() if r.pid]
    assert "chat-a-2" in load_state(state_dir).processes
    result = nines("down", "--state-dir", str(state_dir), timeout=120)
    assert result.returncode == 0, result.stderr
    alive = [pid for pid, created in pids if psutil.pid_exists(pid)
             and abs(psutil.Process(pid).create_time() - created) < 1
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == [] and find_state(state_dir) is None


def test_bad_autoscale_settings_are_one_sentence_and_exit_2(server_dir):
    bad = server_dir / "bad.yaml"
    bad.write_text(TOPOLOGY.replace("      max: 2\n", "      max: 0\n"))
    result = nines("up", "--topology", str(bad), "--state-dir", str(server_dir / "s"), timeout=60)
    assert result.returncode == 2
    assert f"{bad}:19: services.chat-{{region}}-{{n}}.autoscale.max" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
