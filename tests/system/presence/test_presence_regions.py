"""Presence across regions on real servers: propagation, a partition (stale, never wrong),
the heal, and a Redis outage. The tests run in this order on one lab."""
from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from system.chat.client import ChatClient
from system.common.auth import issue_token

pytestmark = [pytest.mark.infra, pytest.mark.slow]


def uid(name: str, region: str) -> str:
    return f"{name}{uuid.uuid4().hex[:6]}@{region}"


def client(lab, user: str, region: str) -> ChatClient:
    url = lab.chat.chat_urls[f"chat-{region}-1"].replace("http://", "ws://") + "/ws"
    return ChatClient(user, issue_token(lab.chat.secret, user), server=url)


def run(scenario) -> None:
    """Run ``scenario(http)`` with one HTTP client for all its questions."""
    async def main():
        async with httpx.AsyncClient(timeout=2) as http:
            await scenario(http)
    asyncio.run(main())


async def ask(http: httpx.AsyncClient, lab, region: str, user: str) -> dict:
    url = lab.chat.chat_urls[f"chat-{region}-1"]
    r = await http.get(f"{url}/presence", params={"user": user},
                       headers={"Authorization": f"Bearer {issue_token(lab.chat.secret, user)}"})
    assert r.status_code == 200, r.text
    return r.json()


async def until(http, lab, region: str, user: str, check, timeout: float = 10.0, seen: list | None = None) -> dict:
    """Poll ``region``'s answer about ``user`` until ``check`` holds; every answer goes into ``seen``."""
    end = time.monotonic() + timeout
    while True:
        answer = await ask(http, lab, region, user)
        if seen is not None:
            seen.append(answer)
        if check(answer):
            return answer
        assert time.monotonic() < end, f"{region} about {user}: {answer}"
        await asyncio.sleep(0.05)


def fresh(state: str, region: str | None = None):
    return lambda a: a["state"] == state and not a["stale"] and (region is None or a["region"] == region)


def test_presence_set_in_one_region_is_seen_in_the_other(presence_lab):
    alice = uid("alice", "us-east")

    async def scenario(http):
        assert (await ask(http, presence_lab, "eu-west", alice))["state"] == "offline"
        a = client(presence_lab, alice, "us-east")
        began = time.time()
        await a.connect()
        online = await until(http, presence_lab, "eu-west", alice, fresh("online", "us-east"), timeout=5)
        assert began - 1 <= online["as_of"] <= time.time() and online["status"] == "online"
        assert time.time() - began < 5
        url, auth = presence_lab.chat.chat_urls["chat-eu-west-1"], {"Authorization": f"Bearer {a.token}"}
        bulk = (await http.get(f"{url}/presence", params={"users": f"{alice},nobody@us-east"}, headers=auth)).json()
        assert bulk["presence"][alice]["state"] == "online"
        assert bulk["presence"]["nobody@us-east"]["state"] == "offline"
        r = await http.get(f"{url}/presence", params={"users": ",".join(["u@us-east"] * 1001)}, headers=auth)
        assert r.status_code == 400 and "at most 1000" in r.json()["error"]
        await a.close()
        offline = await until(http, presence_lab, "eu-west", alice, fresh("offline"), timeout=5)
        assert offline["region"] == "us-east" and offline["as_of"] > online["as_of"]
    run(scenario)


def test_partition_reports_remote_presence_stale_never_wrong_and_heal_makes_it_fresh(presence_lab):
    bob, carol, alice = uid("bob", "eu-west"), uid("carol", "eu-west"), uid("alice", "us-east")

    async def scenario(http):
        b, a = client(presence_lab, bob, "eu-west"), client(presence_lab, alice, "us-east")
        await b.connect()
        await a.connect()
        await until(http, presence_lab, "us-east", bob, fresh("online", "eu-west"))
        await until(http, presence_lab, "eu-west", alice, fresh("online", "us-east"))
        cut = presence_lab.partition("eu-west")
        assert len(cut) == 4
        try:
            seen: list[dict] = []
            await until(http, presence_lab, "us-east", bob, lambda x: x["stale"], timeout=5, seen=seen)
            # bob leaves and carol arrives on the far side: us-east cannot know, so it must say stale
            await b.close()
            c = client(presence_lab, carol, "eu-west")
            await c.connect()
            await until(http, presence_lab, "eu-west", carol, fresh("online", "eu-west"))    # local side works
            for _ in range(10):
                seen.append(await ask(http, presence_lab, "us-east", bob))
                seen.append(await ask(http, presence_lab, "us-east", carol))
                seen.append(await ask(http, presence_lab, "eu-west", alice))
                await asyncio.sleep(0.05)
        finally:
            presence_lab.heal()
        assert seen and all(x["stale"] for x in seen[-30:]), seen[-30:]
        assert all(x["state"] == "online" for x in seen if x["user"] == bob)          # last known, not a guess
        # healed: every region sees the changes made during the partition, fresh
        await until(http, presence_lab, "us-east", bob, fresh("offline", "eu-west"), timeout=15)
        await until(http, presence_lab, "us-east", carol, fresh("online", "eu-west"), timeout=5)
        await until(http, presence_lab, "eu-west", alice, fresh("online", "us-east"), timeout=5)
        await a.close()
        await c.close()
    run(scenario)


def test_redis_down_local_presence_unknown_remote_region_still_answers(presence_lab):
    dan = uid("dan", "eu-west")
    redis = presence_lab.chat.infra["eu-west"].redis

    async def scenario(http):
        d = client(presence_lab, dan, "eu-west")
        await d.connect()
        await until(http, presence_lab, "eu-west", dan, fresh("online", "eu-west"))
        redis.process.stop(grace=5)
        try:
            await until(http, presence_lab, "eu-west", dan, lambda x: x["state"] == "unknown", timeout=15)
            # the other region's replica does not depend on eu-west's Redis
            await until(http, presence_lab, "us-east", dan, fresh("online", "eu-west"), timeout=5)
        finally:
            presence_lab.group.restart(redis.process)
        await until(http, presence_lab, "eu-west", dan, fresh("online", "eu-west"), timeout=20)
        await d.close()
    run(scenario)
