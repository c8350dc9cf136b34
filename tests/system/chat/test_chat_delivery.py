"""Delivery on real servers: within and across regions, offline users, history, authorization,
and bad input that must never take the server down or lose another user's messages."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
import websockets

from system.chat.client import ChatClient, SendRefused
from system.common.auth import issue_token

pytestmark = [pytest.mark.infra]


def uid(name: str, region: str) -> str:
    return f"{name}{uuid.uuid4().hex[:6]}@{region}"


def client(lab, user: str, **kw) -> ChatClient:
    return ChatClient(user, issue_token(lab.secret, user), routers=list(lab.router_urls.values()), **kw)


def test_delivery_within_and_across_regions_and_history(chat_lab):
    async def scenario():
        alice, bob, carol = uid("alice", "us-east"), uid("bob", "eu-west"), uid("carol", "us-east")
        a, b, c = client(chat_lab, alice), client(chat_lab, bob), client(chat_lab, carol)
        for x in (a, b, c):
            await x.connect()
        assert a.route["region"] == "us-east" and b.route["region"] == "eu-west"
        acks = [await a.send(bob, f"a->b {i}") for i in range(5)]        # across regions
        acks += [await a.send(carol, "a->c")]                           # within us-east
        acks += [await b.send(alice, "b->a")]
        got_b = await b.receive_n(5, timeout=10)
        assert [m["body"] for m in got_b] == [f"a->b {i}" for i in range(5)]
        assert [m["id"] for m in got_b] == [x["id"] for x in acks[:5]]
        seqs = [m["seq"] for m in got_b]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        assert (await c.receive(10))["body"] == "a->c"
        assert (await a.receive(10))["body"] == "b->a"
        # history: the sender sees what they sent, the recipient what they got, in sequence order
        deadline = time.monotonic() + 10
        while True:
            hist = await a.history()
            if len(hist["messages"]) == 7 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert {m["id"] for m in hist["messages"]} == {x["id"] for x in acks}
        assert hist["source"] == "postgres"
        conv = acks[0]["conv"]
        # bob's own copy of what he sent is stored asynchronously in his region: poll for it
        deadline = time.monotonic() + 10
        while True:
            hb = await b.history(conv=conv)
            if len(hb["messages"]) == 6 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert [m["id"] for m in hb["messages"]] == [x["id"] for x in acks[:5]] + [acks[6]["id"]]
        for x in (a, b, c):
            await x.close()
    asyncio.run(scenario())


def test_offline_user_gets_everything_since_last_seen_on_reconnect(chat_lab):
    async def scenario():
        alice, dave = uid("alice", "us-east"), uid("dave", "eu-west")
        a = client(chat_lab, alice)
        await a.connect()
        first = [await a.send(dave, f"early {i}") for i in range(3)]
        d = client(chat_lab, dave)                       # dave was never connected
        await d.connect()
        got = await d.receive_n(3, timeout=10)
        assert [m["id"] for m in got] == [x["id"] for x in first]
        since = dict(d.since)
        await d.close()
        later = [await a.send(dave, f"while away {i}") for i in range(4)]
        d2 = client(chat_lab, dave)
        d2.since = since                                  # the last seen sequence per conversation
        await d2.connect()
        got = await d2.receive_n(4, timeout=10)
        assert [m["id"] for m in got] == [x["id"] for x in later]
        with pytest.raises(asyncio.TimeoutError):
            await d2.receive(0.5)                         # nothing before `since` comes again
        await d2.close()
        await a.close()
    asyncio.run(scenario())


def test_tokens_and_no_cross_user_read(chat_lab):
    url = chat_lab.chat_urls["chat-us-east-1"]
    ws = url.replace("http", "ws") + "/ws"

    async def scenario():
        alice, bob, eve = uid("alice", "us-east"), uid("bob", "us-east"), uid("eve", "us-east")
        a, e = client(chat_lab, alice), client(chat_lab, eve)
        await a.connect()
        await e.connect()
        ack = await a.send(bob, "secret for bob")
        for bad in [None, "garbage", issue_token(b"wrong secret", alice),
                    issue_token(chat_lab.secret, alice, ttl_seconds=-1)]:
            headers = {"Authorization": f"Bearer {bad}"} if bad else {}
            with pytest.raises(websockets.exceptions.InvalidStatus) as info:
                async with websockets.connect(ws, additional_headers=headers, open_timeout=3):
                    pass
            assert info.value.response.status_code == 401
            async with httpx.AsyncClient() as http:
                r = await http.get(f"{url}/history", headers=headers)
                assert r.status_code == 401 and "token" in r.json()["error"]
        async with httpx.AsyncClient() as http:
            auth = {"Authorization": f"Bearer {issue_token(chat_lab.secret, eve)}"}
            r = await http.get(f"{url}/history", params={"conv": ack["conv"]}, headers=auth)
            assert r.status_code == 403
            r = await http.get(f"{url}/history", headers=auth)
            assert r.status_code == 200 and r.json()["messages"] == []
            for params in ({"limit": "-5"}, {"since": "x"}, {"since": str(2 ** 70)}, {"conv": "nope"}):
                r = await http.get(f"{url}/history", params=params, headers=auth)
                assert r.status_code == 400 and r.json()["error"]
        # eve resumes from zero in alice's conversation: she gets nothing of it
        await e.send_raw(json.dumps({"type": "resume", "since": {ack["conv"]: 0}}))
        with pytest.raises(asyncio.TimeoutError):
            await e.receive(0.7)
        await a.close()
        await e.close()
    asyncio.run(scenario())


def test_bad_input_gets_error_frames_and_never_hurts_others(chat_lab):
    url = chat_lab.chat_urls["chat-us-east-1"].replace("http", "ws") + "/ws"

    async def scenario():
        mallory, alice, bob = uid("mallory", "us-east"), uid("alice", "us-east"), uid("bob", "us-east")
        a, b = client(chat_lab, alice), client(chat_lab, bob)
        await a.connect()
        await b.connect()
        async with websockets.connect(url, additional_headers={
                "Authorization": f"Bearer {issue_token(chat_lab.secret, mallory)}"}, max_size=None) as m:
            assert json.loads(await m.recv())["type"] == "hello"
            cases = [("{nope", "bad_json"), ("[]", "bad_frame"), ('{"type":"x"}', "bad_frame"),
                     (json.dumps({"type": "send", "client_id": "1", "to": "x@mars", "body": "b"}), "unknown_recipient"),
                     (json.dumps({"type": "send", "client_id": "2", "to": bob, "body": "x" * 5000}), "too_large")]
            for text, code in cases:
                await m.send(text)
                frame = json.loads(await m.recv())
                assert frame["type"] == "error" and frame["code"] == code, frame
                assert frame["message"]
            # a flood: rate_limited errors, then the connection is closed with 1008
            for i in range(200):
                await m.send(json.dumps({"type": "send", "client_id": f"f{i}", "to": bob, "body": "spam"}))
            codes = []
            with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                while True:
                    try:
                        frame = json.loads(await asyncio.wait_for(m.recv(), 10))
                    except asyncio.TimeoutError:
                        raise AssertionError(f"no close after a flood; frames: {codes}") from None
                    codes.append(frame.get("code") or frame["type"])
            assert "rate_limited" in codes and info.value.rcvd.code == 1008
        # a frame larger than the transport limit closes that socket with 1009 only
        async with websockets.connect(url, additional_headers={
                "Authorization": f"Bearer {issue_token(chat_lab.secret, mallory)}"}, max_size=None) as m:
            await m.recv()
            await m.send("x" * 100_000)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                await asyncio.wait_for(m.recv(), 5)
            assert info.value.rcvd.code == 1009
        # the others were not hurt: bob still gets alice's message
        ack = await a.send(bob, "still here")
        got = await b.receive(10)
        while got["from"] != alice:
            got = await b.receive(10)
        assert got["id"] == ack["id"]
        with pytest.raises(SendRefused, match="unknown_recipient"):
            await a.send("nobody@mars", "x")
        await a.close()
        await b.close()
    asyncio.run(scenario())
    assert httpx.get(chat_lab.chat_urls["chat-us-east-1"] + "/healthz").status_code == 200


def test_presence_metrics_and_ready(chat_lab):
    async def scenario():
        alice, bob = uid("alice", "us-east"), uid("bob", "eu-west")
        a = client(chat_lab, alice)
        await a.connect()
        url = chat_lab.chat_urls["chat-eu-west-1"]
        auth = {"Authorization": f"Bearer {issue_token(chat_lab.secret, bob)}"}
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{url}/presence", params={"user": alice}, headers=auth)
            assert r.json()["status"] == "online" and r.json()["region"] == "us-east"   # across regions
            r = await http.get(f"{url}/presence", params={"user": bob}, headers=auth)
            assert r.json()["status"] == "offline"
            r = await http.get(f"{url}/presence", params={"user": "x y"}, headers=auth)
            assert r.status_code == 400
            r = await http.get(f"{url}/metrics")
            assert "nineslab_state" in r.text and "chat_messages_acked" in r.text
            r = await http.get(f"{url}/readyz")
            assert r.status_code == 200 and r.json()["dependencies"]["nats"] == "ok"
            r = await http.get(chat_lab.router_urls["router-1"] + "/route", params={"user": "a b"})
            assert r.status_code == 400
        await a.close()
    asyncio.run(scenario())


def test_live_messages_wait_for_the_resume_replay_so_order_holds(chat_lab):
    """A message that reaches the server between connect and resume must not overtake the
    replay of older stored messages: the server holds it until the replay is sent."""
    url = chat_lab.chat_urls["chat-eu-west-1"].replace("http", "ws") + "/ws"

    async def stored(b_token: str, conv: str, count: int) -> None:
        deadline = time.monotonic() + 10
        async with httpx.AsyncClient() as http:
            while True:
                r = await http.get(f"{chat_lab.chat_urls['chat-eu-west-1']}/history", params={"conv": conv},
                                   headers={"Authorization": f"Bearer {b_token}"})
                if r.status_code == 200 and len(r.json()["messages"]) >= count:
                    return
                assert time.monotonic() < deadline, "message never stored"
                await asyncio.sleep(0.05)

    async def scenario():
        alice, bob = uid("alice", "us-east"), uid("bob", "eu-west")
        a = client(chat_lab, alice)
        await a.connect()
        token = issue_token(chat_lab.secret, bob)
        first = await a.send(bob, "while bob was away")
        await stored(token, first["conv"], 1)
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as b:
            assert json.loads(await b.recv())["type"] == "hello"
            second = await a.send(bob, "while bob reconnects")
            await stored(token, first["conv"], 2)       # pushed to bob's server before storing
            await b.send(json.dumps({"type": "resume", "since": {}}))
            frames = []
            while not frames or frames[-1]["type"] != "resumed":
                frames.append(json.loads(await asyncio.wait_for(b.recv(), 10)))
        assert [f["id"] for f in frames if f["type"] == "message"] == [first["id"], second["id"]]
        await a.close()
    asyncio.run(scenario())


def test_frames_are_handled_in_the_order_sent_and_a_fragmented_message_is_one_frame(chat_lab):
    """Frames sent before the hello, and after a resume that is still reading the store, wait
    their turn (the server handles them in order); a message sent in fragments is joined;
    the token may come as ``?token=``."""
    url = chat_lab.chat_urls["chat-us-east-1"].replace("http", "ws") + "/ws"

    async def scenario():
        alice, bob = uid("alice", "us-east"), uid("bob", "us-east")
        async with websockets.connect(f"{url}?token={issue_token(chat_lab.secret, alice)}") as ws:
            await ws.send(json.dumps({"type": "ping"}))                    # before the hello came
            await ws.send(json.dumps({"type": "resume", "since": {}}))
            await ws.send(json.dumps({"type": "ping"}))
            await ws.send(iter(['{"type":"send","client_id":"frag",', f'"to":"{bob}",', '"body":"in parts"}']))
            frames = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(5)]
        kinds = [f["type"] for f in frames]
        assert kinds[:4] == ["hello", "pong", "resumed", "pong"], kinds
        assert frames[4]["type"] == "ack" and frames[4]["client_id"] == "frag", frames[4]
    asyncio.run(scenario())
