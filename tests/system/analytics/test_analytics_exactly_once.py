"""Exactly-once counting on real NATS JetStream and PostgreSQL: the streams are made when
missing, and after the service is killed mid-stream and restarted, every total is exact."""
from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from analytics_helpers import publish, wait_for

pytestmark = [pytest.mark.infra, pytest.mark.slow]


def test_streams_are_created_when_missing_and_consumers_bound(env):
    svc = env.service()

    async def inspect():
        import nats
        nc = await nats.connect(env.nats)
        try:
            js = nc.jetstream()
            chat, events = await js.stream_info("CHAT"), await js.stream_info("EVENTS")
            consumers = [c.name for c in await js.consumers_info("CHAT")] + \
                        [c.name for c in await js.consumers_info("EVENTS")]
            return chat.config, events.config, consumers
        finally:
            await nc.close()

    chat, events, consumers = asyncio.run(inspect())
    assert chat.subjects == ["chat.*"] and events.subjects == ["events.>"]
    assert chat.num_replicas == 1 == events.num_replicas      # a lone node: R1
    assert chat.max_age == 24 * 3600 and events.max_age == 24 * 3600  # the same streams the chat servers make
    assert sorted(consumers) == ["analytics-chat", "analytics-events"]
    svc.stop()
    env.service()   # binding again is idempotent


def test_kill_mid_stream_then_totals_are_exact(env):
    env.service().stop()          # makes the streams and the durable consumers
    start = time.time() - 1
    messages, delivered, failed = 6000, 1500, 300
    asyncio.run(publish(env.nats, messages, delivered=delivered, failed=failed))
    svc = env.service(fetch_batch=20)   # small batches: it is still busy when killed
    wait_for(lambda: 0 < svc.get("/api/stats").json()["ingested"], "some events ingested")
    assert svc.get("/api/stats").json()["ingested"] < messages + delivered + failed, "too fast to kill mid-stream"
    svc.stop(signal.SIGKILL)
    env.service()
    second = env.services[-1]
    end = time.time() + 2

    def exact():
        return second.total("messages", start, end) == messages and \
            second.total("failed", start, end) == failed and second.total("delivered", start, end) == delivered
    try:
        wait_for(exact, "totals exact after restart", timeout=90, interval=0.3)
    except AssertionError:
        got = {m: second.total(m, start, end) for m in ("messages", "failed", "delivered")}
        raise AssertionError(f"totals {got} != {messages, failed, delivered}; stats {second.get('/api/stats').json()}")
    by_region = [second.total(f"messages.{r}", start, end) for r in ("us-east", "eu-west", "ap-south")]
    assert by_region == [messages / 3] * 3
    # a redelivery of everything (the stream replayed to a new consumer would be worse) adds nothing:
    asyncio.run(publish(env.nats, 100, prefix="m"))            # same ids: JetStream dedups, we would too
    r = httpx.post(second.url + "/api/batch", timeout=30)
    assert r.status_code == 200
    assert second.total("messages", start, end) == messages
    assert abs(second.total("error_rate", start, end) - failed / (messages + failed)) < 1e-9
    assert second.get("/metrics/query", metric="latency_p99", **{"from": start, "to": end, "step": 3600}) \
        .json()["points"][0]["value"] == pytest.approx(40.0, rel=0.3)
    metrics = second.get("/metrics").text
    assert "analytics_events_ingested_total" in metrics and "analytics_ingest_lag_seconds_bucket" in metrics


def test_streams_are_r3_on_a_three_node_cluster(env, servers):
    nodes = servers.nats_cluster(3, prefix="nats-r3")
    from analytics_helpers import Service
    svc = Service(env.tmp, "analytics-r3", env.dsn, [nodes[0].url])
    env.services.append(svc)
    svc.start()

    async def replicas():
        import nats
        nc = await nats.connect(nodes[1].url)
        try:
            js = nc.jetstream()
            return [(await js.stream_info(n)).config.num_replicas for n in ("CHAT", "EVENTS")]
        finally:
            await nc.close()

    assert asyncio.run(replicas()) == [3, 3]
