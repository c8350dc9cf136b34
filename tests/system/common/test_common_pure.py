"""Pure parts of system.common: tokens, home regions, breaker and backoff in virtual time."""
from __future__ import annotations

import asyncio
import json
import random

import pytest

from lab.errors import ConfigError
from system.common.auth import AuthError, issue_token, verify_token
from system.common.breaker import CLOSED, HALF_OPEN, OPEN, BreakerOpen, CircuitBreaker
from system.common.config import load_config, parse_config
from system.common.events import EventLog
from system.common.regions import (UnknownUser, conversation_id, conversation_members, failover_order,
                                   home_region)
from system.common.retry import Backoff, backoff_delays, retry_async

REGIONS = ["us-east", "eu-west", "ap-south"]


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_token_round_trip_and_every_refusal():
    clock = Clock()
    token = issue_token(b"s3cret", "alice", 60, now=clock)
    assert verify_token(b"s3cret", token, now=clock) == "alice"
    cases = [(None, "missing"), ("", "missing"), ("abc", "malformed"), ("a.b.c", "signature"),
             (token[:-2] + "xx", "signature"), (issue_token(b"other", "alice", 60, now=clock), "signature")]
    for bad, words in cases:
        with pytest.raises(AuthError, match=words):
            verify_token(b"s3cret", bad, now=clock)
    clock.t += 61
    with pytest.raises(AuthError, match="expired"):
        verify_token(b"s3cret", token, now=clock)


def test_home_region_is_explicit_or_a_stable_hash():
    assert home_region("bob@eu-west", REGIONS) == "eu-west"
    assert home_region("carol", REGIONS) == home_region("carol", REGIONS) in REGIONS
    spread = {home_region(f"user{i}", REGIONS) for i in range(50)}
    assert spread == set(REGIONS)
    for bad in ["x@mars", "", "a b", "x" * 65, "a~b"]:
        with pytest.raises(UnknownUser):
            home_region(bad, REGIONS)
    assert failover_order("eu-west", REGIONS) == ["eu-west", "ap-south", "us-east"]
    assert conversation_id("b", "a") == conversation_id("a", "b") == "a~b"
    assert conversation_members("a~b") == ("a", "b")
    with pytest.raises(UnknownUser):
        conversation_members("nope")


def test_breaker_opens_after_threshold_trials_after_reset_and_reports_every_change():
    clock, changes = Clock(), []
    b = CircuitBreaker("postgres", failure_threshold=3, reset_timeout=2.0, clock=clock,
                       on_change=lambda name, old, new, detail: changes.append((clock.t, old, new)))
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == CLOSED
    b.failure()
    assert b.state == OPEN and not b.allow()
    clock.t += 1.9
    assert not b.allow()
    clock.t += 0.1
    assert b.allow() and b.state == HALF_OPEN
    assert not b.allow()                     # one trial at a time
    b.failure()
    assert b.state == OPEN
    clock.t += 2.0
    assert b.allow()
    b.success()
    assert b.state == CLOSED
    assert [c[1:] for c in changes] == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN),
                                        (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_breaker_call_refuses_without_calling_when_open():
    b = CircuitBreaker("redis", failure_threshold=1, reset_timeout=10, clock=Clock())
    calls = []

    async def boom():
        calls.append(1)
        raise OSError("down")

    async def scenario():
        with pytest.raises(OSError):
            await b.call(boom)
        with pytest.raises(BreakerOpen, match="redis is unavailable"):
            await b.call(boom)
    asyncio.run(scenario())
    assert calls == [1]


def test_backoff_is_jittered_capped_and_reproducible():
    policy = Backoff(base=0.1, factor=2, cap=1.0)
    a = list(backoff_delays(policy, random.Random(7), 10))
    assert a == list(backoff_delays(policy, random.Random(7), 10))
    assert all(0 <= d <= min(1.0, 0.1 * 2 ** i) for i, d in enumerate(a))


def test_retry_async_stops_at_the_deadline_in_virtual_time():
    clock, slept, attempts = Clock(0.0), [], []

    async def sleep(d):
        slept.append(d)
        clock.t += d

    async def op():
        attempts.append(clock.t)
        raise TimeoutError("no")

    async def scenario():
        with pytest.raises(TimeoutError):
            await retry_async(op, retry_on=(TimeoutError,), deadline=5.0, policy=Backoff(0.5, 2, 2),
                              rng=random.Random(1), clock=clock, sleep=sleep)
    asyncio.run(scenario())
    assert clock.t <= 5.0 and len(attempts) == len(slept) + 1 >= 3


def test_config_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"c.json:1: not valid JSON"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="port"):
        parse_config({"name": "x", "role": "chat", "port": "abc", "regions": ["r"]})
    cfg = parse_config({"name": "x", "role": "chat", "port": 1, "regions": ["r"], "secret_file": str(tmp_path / "s")})
    with pytest.raises(ConfigError, match="secret file"):
        cfg.secret_bytes()


def test_events_are_one_json_line_each(tmp_path):
    path = tmp_path / "ev" / "x.jsonl"
    log = EventLog("router-1", str(path), clock=Clock(5.0))
    log.emit("health", "chat-1", "unhealthy", "timeout")
    log.emit("breaker", "postgres", "open")
    log.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0] == {"ts": 5.0, "source": "router-1", "kind": "health", "subject": "chat-1",
                        "state": "unhealthy", "detail": "timeout"}
    assert lines[1]["state"] == "open"


def test_settings_accept_the_topology_names():
    from system.chat.settings import ChatSettings
    from system.common.config import typed_settings
    from system.router.server import RouterSettings
    r = typed_settings(RouterSettings, {"check_interval_seconds": 0.5, "unhealthy_after": 4, "route_ttl_seconds": 9,
                                        "recovery_backoff_seconds": 1})
    assert (r.check_interval, r.failure_threshold, r.route_ttl, r.check_timeout) == (0.5, 4, 9, 1.0)
    c = typed_settings(ChatSettings, {"breaker_reset_seconds": 5, "replicas": 2, "history_limit": 200})
    assert (c.breaker_reset, c.history_limit, c.max_message_bytes) == (5, 200, 65536)
    with pytest.raises(ConfigError, match="settings.check_interval"):
        typed_settings(RouterSettings, {"check_interval_seconds": -1}, path="cfg.json")
