"""High availability on real servers: a chat server killed mid-conversation, a region's
PostgreSQL stopped, a whole region failed over by the routers. Tests run in this order on one lab."""
from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import httpx
import pytest

from lab.servers.base import wait_until
from system.chat.client import ChatClient, ChatClientError
from system.common.auth import issue_token

pytestmark = [pytest.mark.infra, pytest.mark.slow]


def client(lab, user: str) -> ChatClient:
    return ChatClient(user, issue_token(lab.secret, user), routers=list(lab.router_urls.values()))


async def send_until_acked(c: ChatClient, to: str, body: str, deadline: float = 20.0) -> dict:
    """What a real client does: retry a send whose connection dropped, until it is acked."""
    end = time.monotonic() + deadline
    while True:
        try:
            return await c.send(to, body, timeout=5)
        except ChatClientError:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.1)


async def receive_ids(c: ChatClient, want: set[str], timeout: float) -> set[str]:
    got, end = set(), time.monotonic() + timeout
    while not want <= got and time.monotonic() < end:
        try:
            got.add((await c.receive(max(0.05, end - time.monotonic())))["id"])
        except asyncio.TimeoutError:
            break
    return got


def has_event(lab, source: str, kind: str, subject: str, state: str) -> bool:
    return any(e["kind"] == kind and e["subject"] == subject and e["state"] == state for e in lab.events(source))


def test_server_killed_mid_conversation_loses_nothing_acked(ha_lab):
    alice, bob = f"alice{uuid.uuid4().hex[:6]}@us-east", f"bob{uuid.uuid4().hex[:6]}@eu-west"

    async def scenario():
        a, b = client(ha_lab, alice), client(ha_lab, bob)
        await a.connect()
        await b.connect()
        victim = a.route["server_name"]
        acked_ab, acked_ba = [], []
        for i in range(10):
            acked_ab.append(await send_until_acked(a, bob, f"a{i}"))
            acked_ba.append(await send_until_acked(b, alice, f"b{i}"))
            if i == 4:
                ha_lab.chat[victim].popen.kill()           # SIGKILL mid-conversation
        got_b = await receive_ids(b, {x["id"] for x in acked_ab}, 20)
        got_a = await receive_ids(a, {x["id"] for x in acked_ba}, 20)
        assert {x["id"] for x in acked_ab} <= got_b
        assert {x["id"] for x in acked_ba} <= got_a          # incl. what the killed consumer held
        assert a.connections >= 2 and a.route["server_name"] != victim
        await a.close()
        await b.close()
        return victim
    victim = asyncio.run(scenario())
    wait_until(lambda: has_event(ha_lab, "router-1", "health", victim, "unhealthy"), timeout=10, what="health event")
    ha_lab.restart_chat(victim)
    wait_until(lambda: has_event(ha_lab, "router-1", "health", victim, "healthy"), timeout=10, what="recovery")


def test_postgres_stopped_history_falls_back_and_messages_are_stored_when_it_returns(ha_lab):
    alice, bob = f"alice{uuid.uuid4().hex[:6]}@us-east", f"bob{uuid.uuid4().hex[:6]}@eu-west"
    pg = ha_lab.infra["eu-west"].pg
    url = ha_lab.chat_urls["chat-eu-west-1"]

    async def scenario():
        a, b = client(ha_lab, alice), client(ha_lab, bob)
        await a.connect()
        await b.connect()
        before = [await a.send(bob, f"before {i}") for i in range(3)]
        await receive_ids(b, {x["id"] for x in before}, 10)
        end = time.monotonic() + 10           # pushed before stored: wait until stored (and cached)
        while not {x["id"] for x in before} <= {m["id"] for m in (await b.history())["messages"]}:
            assert time.monotonic() < end, "the messages sent before the stop were never stored"
            await asyncio.sleep(0.05)
        pg.process.stop(grace=5)
        await asyncio.to_thread(wait_until, lambda: has_event(ha_lab, "chat-eu-west-1", "breaker", "postgres", "open"),
                                timeout=15, what="breaker open")
        hist = await b.history()
        assert hist["source"] == "cache"
        assert {x["id"] for x in before} <= {m["id"] for m in hist["messages"]}
        during = [await a.send(bob, f"during {i}") for i in range(5)]      # acked: JetStream holds them
        assert {x["id"] for x in during} <= await receive_ids(b, {x["id"] for x in during}, 10)   # live push
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{url}/readyz")
            assert r.status_code == 200 and "postgres" in r.json()["degraded"]
        ha_lab.group.restart(pg.process)
        want = {x["id"] for x in before + during}
        end = time.monotonic() + 30
        while True:
            hist = await b.history()
            if hist["source"] == "postgres" and want <= {m["id"] for m in hist["messages"]}:
                break
            assert time.monotonic() < end, f"not stored after PostgreSQL returned: {hist['source']}"
            await asyncio.sleep(0.2)
        ids = [m["id"] for m in hist["messages"]]
        assert len(ids) == len(set(ids))                                    # stored once
        await a.close()
        await b.close()
    asyncio.run(scenario())
    assert has_event(ha_lab, "chat-eu-west-1", "breaker", "postgres", "closed")


def test_redis_stopped_presence_unknown_and_delivery_goes_on(ha_lab):
    alice, bob = f"alice{uuid.uuid4().hex[:6]}@us-east", f"bob{uuid.uuid4().hex[:6]}@eu-west"
    redis = ha_lab.infra["eu-west"].redis
    url = ha_lab.chat_urls["chat-eu-west-1"]
    auth = {"Authorization": f"Bearer {issue_token(ha_lab.secret, bob)}"}

    async def scenario():
        a, b = client(ha_lab, alice), client(ha_lab, bob)
        await a.connect()
        await b.connect()
        redis.process.stop(grace=5)
        await asyncio.to_thread(wait_until, lambda: has_event(ha_lab, "chat-eu-west-1", "breaker", "redis", "open"),
                                timeout=15, what="redis breaker open")
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{url}/presence", params={"user": bob}, headers=auth)
            assert r.json()["status"] == "unknown"
        during = [await a.send(bob, f"no redis {i}") for i in range(3)]
        assert {x["id"] for x in during} <= await receive_ids(b, {x["id"] for x in during}, 10)
        ha_lab.group.restart(redis.process)
        await asyncio.to_thread(wait_until, lambda: has_event(ha_lab, "chat-eu-west-1", "breaker", "redis", "closed"),
                                timeout=15, what="redis breaker closed")
        async with httpx.AsyncClient() as http:      # the directory was rebuilt at once
            end = time.monotonic() + 5
            while (await http.get(f"{url}/presence", params={"user": bob}, headers=auth)).json()["status"] != "online":
                assert time.monotonic() < end
                await asyncio.sleep(0.1)
        after = await a.send(bob, "redis is back")
        assert after["id"] in await receive_ids(b, {after["id"]}, 10)
        await a.close()
        await b.close()
    asyncio.run(scenario())


def test_region_without_healthy_server_fails_over_and_is_restored(ha_lab):
    alice = f"alice{uuid.uuid4().hex[:6]}@us-east"
    router = ha_lab.router_urls["router-2"]
    us = [n for n in ha_lab.chat if n.startswith("chat-us-east")]
    for n in us:
        ha_lab.chat[n].stop(grace=5)
        assert ha_lab.chat[n].popen.returncode == 0          # SIGTERM: closed its connections, exit 0

    def routed_to(region: str) -> bool:
        r = httpx.get(f"{router}/route", params={"user": alice}, timeout=1)
        return r.status_code == 200 and r.json()["region"] == region

    wait_until(lambda: routed_to("eu-west"), timeout=10, what="failover to eu-west")
    assert has_event(ha_lab, "router-2", "failover", "us-east", "failed_over")
    # a failed-over user can still talk: connect to eu-west and send
    bob = f"bob{uuid.uuid4().hex[:6]}@eu-west"

    async def scenario():
        a, b = client(ha_lab, alice), client(ha_lab, bob)
        await a.connect()
        await b.connect()
        assert a.route["failed_over"] is True
        await a.send(bob, "from exile")
        # alice's home region has no chat server, yet she gets bob's message live
        ack = await b.send(alice, "to the exile")
        assert ack["id"] in await receive_ids(a, {ack["id"]}, 10)
        await a.close()
        await b.close()
        return ack
    ack = asyncio.run(scenario())
    for n in us:
        ha_lab.group.restart(ha_lab.chat[n])
    wait_until(lambda: routed_to("us-east"), timeout=30, what="restore to us-east")
    assert has_event(ha_lab, "router-2", "failover", "us-east", "restored")

    async def stored_at_home():                       # and it is stored in us-east once it is back
        a = client(ha_lab, alice)
        await a.connect()
        end = time.monotonic() + 15
        while ack["id"] not in {m["id"] for m in (await a.history())["messages"]}:
            assert time.monotonic() < end, "not stored in the home region after it came back"
            await asyncio.sleep(0.2)
        await a.close()
    asyncio.run(stored_at_home())


def test_message_stuck_in_the_home_stream_is_not_delivered_after_newer_ones(ha_lab):
    """The chaos finding (seq 418 delivered after 471): a message to a failed-over user that
    waits in their home region's JetStream consumer (the region's servers frozen, as when dead
    or cut off) must reach them before the newer messages they get live on the exile path,
    not when the home region returns. The exile server catches up from the stream on resume.
    (Its own PostgreSQL is out too: with only two regions the sender's copy, stored in the
    exile region, would otherwise stand in for the home stream; with a sender in a third
    region, as in the chaos run, there is no such copy.)"""
    import os
    import signal

    alice, bob = f"alice{uuid.uuid4().hex[:6]}@us-east", f"bob{uuid.uuid4().hex[:6]}@eu-west"
    exile = ha_lab.chat_urls["chat-eu-west-1"].replace("http", "ws") + "/ws"
    home = [p for n, p in ha_lab.chat.items() if n.startswith("chat-us-east")]
    home_url = next(u for n, u in ha_lab.chat_urls.items() if n.startswith("chat-us-east"))

    pg = ha_lab.infra["eu-west"].pg

    def breaker_events(state: str) -> int:
        return sum(e["kind"] == "breaker" and e["subject"] == "postgres" and e["state"] == state
                   for e in ha_lab.events("chat-eu-west-1"))

    def fixed(user: str) -> ChatClient:
        return ChatClient(user, issue_token(ha_lab.secret, user), server=exile)

    def registered_at_home() -> bool:                 # the exile server told us-east where alice is
        r = httpx.get(f"{home_url}/presence", params={"user": alice}, timeout=1,
                      headers={"Authorization": f"Bearer {issue_token(ha_lab.secret, bob)}"})
        return r.status_code == 200 and r.json()["status"] == "online"

    async def scenario():
        b, a = fixed(bob), fixed(alice)
        await b.connect()
        await a.connect()
        await asyncio.to_thread(wait_until, registered_at_home, timeout=10, what="alice in us-east's directory")
        await a.close()                               # alice drops off ...
        opened = breaker_events("open")
        pg.process.stop(grace=5)
        frozen = []
        try:
            await asyncio.to_thread(wait_until, lambda: breaker_events("open") > opened, timeout=15,
                                    what="eu-west postgres breaker open")
            for p in home:                            # ... and her home region stops consuming
                os.kill(p.popen.pid, signal.SIGSTOP)
                frozen.append(p)
            older = await b.send(alice, "sent while alice was reconnecting")   # waits in chat.us-east
            a = fixed(alice)
            await a.connect()                         # back, failed over: resume
            newer = await b.send(alice, "sent after she came back")             # live on the exile path
            first = await a.receive(10)
        finally:
            for p in frozen:                          # the home region returns and delivers what it held
                os.kill(p.popen.pid, signal.SIGCONT)
            ha_lab.group.restart(pg.process)
        second = await a.receive(15)
        got = [first["id"], second["id"]]
        assert sorted(got) == sorted([older["id"], newer["id"]]), got
        assert got == [older["id"], newer["id"]], "the older message came after the newer one"
        await a.close()
        await b.close()
    asyncio.run(scenario())


def test_a_replica_holding_a_fetched_batch_does_not_reorder_a_conversation(ha_lab):
    """The chaos finding of issue #4: the region's replicas share the work-queue consumer, so a
    replica that fetched older messages and is late (paused, or dead until ``ack_wait``) must not
    let a faster replica deliver newer ones first. Here the test itself is that late replica: it
    fetches the first three messages from ``chat-us-east`` while both us-east servers are paused
    and holds them unacked; the recipient must still get all six in sequence order, once each."""
    import os
    import signal

    import nats

    alice, bob = f"alice{uuid.uuid4().hex[:6]}@eu-west", f"bob{uuid.uuid4().hex[:6]}@us-east"
    home = [ha_lab.chat[n] for n in ("chat-us-east-1", "chat-us-east-2")]

    def fixed(user: str, server: str) -> ChatClient:
        return ChatClient(user, issue_token(ha_lab.secret, user),
                          server=ha_lab.chat_urls[server].replace("http", "ws") + "/ws")

    async def scenario():
        b, a = fixed(bob, "chat-us-east-1"), fixed(alice, "chat-eu-west-1")
        await b.connect()
        await a.connect()
        nc = await nats.connect(ha_lab.infra["us-east"].nats_url)
        js = nc.jetstream()
        late = await js.pull_subscribe_bind(durable="chat-us-east", stream="CHAT")
        frozen = []
        try:
            for p in home:                    # no replica pulls: the late one gets the first batch
                os.kill(p.popen.pid, signal.SIGSTOP)
                frozen.append(p)
            end = time.monotonic() + 10
            while (await js.consumer_info("CHAT", "chat-us-east")).num_waiting and time.monotonic() < end:
                await asyncio.sleep(0.1)
            acked = [await a.send(bob, f"m{i}") for i in range(3)]
            held = await late.fetch(3, timeout=5)
            assert [m.metadata.sequence.stream for m in held] == [x["seq"] for x in acked]
        finally:
            for p in frozen:
                os.kill(p.popen.pid, signal.SIGCONT)
        acked += [await a.send(bob, f"m{i}") for i in range(3, 6)]   # a prompt replica has these
        got = []
        try:
            end = time.monotonic() + 15                # the held ones come back after ack_wait (2 s)
            while len(got) < 6 and time.monotonic() < end:
                with contextlib.suppress(asyncio.TimeoutError):
                    got.append(await b.receive(max(0.05, end - time.monotonic())))
        finally:
            await nc.close()
        assert [m["id"] for m in got] == [x["id"] for x in acked], [m["seq"] for m in got]
        with contextlib.suppress(asyncio.TimeoutError):
            extra = await b.receive(1.0)
            raise AssertionError(f"an extra message after the six: {extra['seq']}")
        await a.close()
        await b.close()
    asyncio.run(scenario())


def test_a_user_failing_over_while_messages_flow_gets_each_one_live_in_order(ha_lab):
    """Senders publish nothing for failed-over users any more: the exile's server reads their
    home region's stream for them (system/chat/exile_feed.py). The race to lose: messages acked
    while alice fails over, around her resume's replay, with her home region frozen (no home
    consumer to push or store). Each acked message must reach her, once, in sequence order,
    live or by the replay; and after she leaves, her server reads her home stream no more."""
    import os
    import signal

    alice = f"alice{uuid.uuid4().hex[:6]}@us-east"
    senders = [f"bob{i}{uuid.uuid4().hex[:6]}@eu-west" for i in range(4)]
    exile = ha_lab.chat_urls["chat-eu-west-1"].replace("http", "ws") + "/ws"
    home = [p for n, p in ha_lab.chat.items() if n.startswith("chat-us-east")]

    def fixed(user: str) -> ChatClient:
        return ChatClient(user, issue_token(ha_lab.secret, user), server=exile)

    async def scenario():
        bobs = [fixed(u) for u in senders]
        for b in bobs:
            await b.connect()
        acked: list[dict] = []
        stop = asyncio.Event()

        async def keep_sending(b: ChatClient, k: int) -> None:
            i = 0
            while not stop.is_set():             # 4 a second each: under the lab's rate limit of 5
                acked.append(await b.send(alice, f"{k}-{i}"))
                i += 1
                await asyncio.sleep(0.25)
        frozen = []
        try:
            for p in home:                       # her home region neither pushes nor stores
                os.kill(p.popen.pid, signal.SIGSTOP)
                frozen.append(p)
            sending = [asyncio.create_task(keep_sending(b, k)) for k, b in enumerate(bobs)]
            await asyncio.sleep(1.0)
            a = fixed(alice)
            await a.connect()                     # fails over in the middle of the flow
            await asyncio.sleep(2.0)
            stop.set()
            await asyncio.gather(*sending)
            got = []
            end = time.monotonic() + 10
            while len(got) < len(acked) and time.monotonic() < end:
                with contextlib.suppress(asyncio.TimeoutError):
                    got.append(await a.receive(max(0.05, end - time.monotonic())))
            assert {m["id"] for m in got} == {x["id"] for x in acked}, \
                f"{len(acked) - len(got)} of {len(acked)} acked messages never reached the exile"
            seqs = [m["seq"] for m in got]
            assert seqs == sorted(seqs), seqs
            await a.close()
            await asyncio.sleep(0.5)
            feeds = await asyncio.to_thread(httpx.get, ha_lab.chat_urls["chat-eu-west-1"] + "/metrics", timeout=2)
            assert 'chat_exile_feeds{region="us-east"} 0.0' in feeds.text
        finally:
            for p in frozen:
                os.kill(p.popen.pid, signal.SIGCONT)
        for b in bobs:
            await b.close()
    asyncio.run(scenario())
