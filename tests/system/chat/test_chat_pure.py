"""Pure parts of the chat server: parsing every kind of bad frame, and the rate limit."""
from __future__ import annotations

import asyncio
import json

import pytest

from system.chat import protocol
from system.chat.protocol import ClientAck, FrameError, Ping, Resume, Send, parse_client_frame
from system.chat.ratelimit import TokenBucket

LIMIT = 1000


def test_good_frames():
    assert parse_client_frame('{"type":"send","client_id":"c1","to":"bob","body":"hi","sent_ts":1.5}', LIMIT) == \
        Send("c1", "bob", "hi", 1.5)
    assert parse_client_frame('{"type":"ack","id":"abc"}', LIMIT) == ClientAck("abc")
    assert parse_client_frame('{"type":"resume","since":{"a~b":3}}', LIMIT) == Resume({"a~b": 3})
    assert parse_client_frame('{"type":"ping"}', LIMIT) == Ping()


@pytest.mark.parametrize("text,code,words", [
    ("{not json", protocol.BAD_JSON, "not valid JSON"),
    (b"\xff\xfe", protocol.BAD_JSON, "UTF-8"),
    ("[1,2]", protocol.BAD_FRAME, "JSON object"),
    ('{"type":"dance"}', protocol.BAD_FRAME, "unknown frame type 'dance'"),
    ('{"type":"send","to":"bob","body":"x"}', protocol.BAD_FRAME, "client_id"),
    ('{"type":"send","client_id":"c","to":"bo b","body":"x"}', protocol.UNKNOWN_RECIPIENT, "unknown recipient"),
    ('{"type":"send","client_id":"c","to":"bob","body":5}', protocol.BAD_FRAME, "body"),
    ('{"type":"send","client_id":"c","to":"bob","body":"x","sent_ts":"now"}', protocol.BAD_FRAME, "sent_ts"),
    (json.dumps({"type": "send", "client_id": "c", "to": "bob", "body": "é" * 501}), protocol.TOO_LARGE, "1002 bytes"),
    ("x" * (LIMIT + 5000), protocol.TOO_LARGE, "exceeds"),
    ('{"type":"ack"}', protocol.BAD_FRAME, "id"),
    ('{"type":"resume","since":{"a~b":-1}}', protocol.BAD_FRAME, ">= 0"),
    ('{"type":"resume","since":[1]}', protocol.BAD_FRAME, "since"),
    ('{"type":"resume","since":{"a~b":99999999999999999999999}}', protocol.BAD_FRAME, ">= 0"),
    ("[" * 100000, protocol.TOO_LARGE, "exceeds"),
])
def test_bad_frames_give_a_code_and_a_sentence(text, code, words):
    with pytest.raises(FrameError) as info:
        parse_client_frame(text, LIMIT)
    assert info.value.code == code
    assert words in info.value.message


def test_deep_nesting_is_bad_json_not_a_crash():
    with pytest.raises(FrameError) as info:
        parse_client_frame("[" * 5000 + "]" * 5000, 100_000)
    assert info.value.code in (protocol.BAD_JSON, protocol.BAD_FRAME)


def test_send_errors_carry_the_client_id():
    with pytest.raises(FrameError) as info:
        parse_client_frame('{"type":"send","client_id":"c9","to":"","body":"x"}', LIMIT)
    assert info.value.client_id == "c9"


def test_token_bucket_allows_burst_then_rate():
    b = TokenBucket(rate=10, burst=5, now=0.0)
    assert [b.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert b.strikes == 1
    assert b.take(0.1) and not b.take(0.1)
    assert b.take(10.0) and b.strikes == 0


def test_message_ids_look_like_uuid_hex_and_never_repeat():
    ids = protocol.message_ids(b"\x01" * 8)
    first = [next(ids) for _ in range(1000)]
    assert first[0] == "0101010101010101" + "0" * 16 and len(set(first)) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in first)
    assert next(protocol.message_ids())[:16] != next(protocol.message_ids())[:16]   # a prefix a process


class RecordingTransport:
    """What a picows transport is asked to do, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def send(self, kind, frame) -> None:
        self.calls.append(("send", frame))

    def send_close(self, code, reason) -> None:
        self.calls.append(("close", int(code), reason))

    def disconnect(self) -> None:
        self.calls.append(("disconnect",))


def test_a_paused_socket_queues_frames_in_order_and_a_client_that_never_reads_is_closed(monkeypatch):
    asyncio.run(paused_socket(monkeypatch))


async def paused_socket(monkeypatch):
    from system.chat import websocket
    monkeypatch.setattr(websocket, "CLOSE_TIMEOUT", 0.01)
    t = RecordingTransport()
    conn = websocket.Connection(t, "bob", TokenBucket(rate=1, burst=1, now=0.0))
    conn.push("a")
    conn.pause()
    conn.push("b")
    conn.push("c")
    assert t.calls == [("send", "a")]
    conn.resume()
    conn.push("d")
    assert [c[1] for c in t.calls] == ["a", "b", "c", "d"]
    monkeypatch.setattr(websocket, "OUT_LIMIT", 3)
    conn.pause()
    for f in "efgh":
        conn.push(f)
    assert conn.closed and t.calls[-1] == ("close", protocol.CLOSE_TRY_AGAIN, b"not reading")
    conn.push("i")                      # closed: nothing more goes out
    await asyncio.sleep(0.05)           # the client never answered the close: hung up
    assert t.calls[-2:] == [("close", protocol.CLOSE_TRY_AGAIN, b"not reading"), ("disconnect",)]


def test_close_sends_the_queued_error_frames_before_the_close_frame():
    asyncio.run(close_after_queued())


async def close_after_queued():
    from system.chat import websocket
    t = RecordingTransport()
    conn = websocket.Connection(t, "bob", TokenBucket(rate=1, burst=1, now=0.0))
    conn.pause()
    conn.push("error frame")
    conn.close(protocol.CLOSE_POLICY, "flood")
    conn.close(protocol.CLOSE_POLICY, "twice")
    assert t.calls == [("send", "error frame"), ("close", 1008, b"flood")]


class _JsMsg:
    """A JetStream message as nats-py hands it over; counts how often its payload is read."""

    def __init__(self, seq: int, payload: dict | bytes, reply: str | None = None) -> None:
        self.reply = reply or f"$JS.ACK.CHAT.chat-us-east.1.{seq}.{seq}.1700000000000000000.0"
        self._data = payload if isinstance(payload, bytes) else protocol.encode(payload)
        self.reads = 0

    @property
    def data(self) -> bytes:
        self.reads += 1
        return self._data


@pytest.mark.parametrize("reply", [
    "$JS.ACK.CHAT.chat-us-east.3.4711.12.1700000000000000000.5",                    # v1, 9 tokens
    "$JS.ACK._.ACCHASH.CHAT.chat-us-east.3.4711.12.1700000000000000000.5.rnd",      # v2, domain + account
    "$JS.ACK.hub.ACCHASH.CHAT.chat-us-east.3.4711.12.1700000000000000000.5",        # v2 without the token
])
def test_stream_sequence_agrees_with_nats_py_metadata(reply):
    from nats.aio.msg import Msg

    from system.chat.delivery import stream_sequence
    assert stream_sequence(reply) == Msg.Metadata._from_reply(reply).sequence.stream == 4711


@pytest.mark.parametrize("reply", ["_INBOX.abc.1", "$JS.ACK.CHAT", "", "$JS.API.x.y.z.1.2.3.4"])
def test_stream_sequence_refuses_what_is_not_an_ack_subject(reply):
    from system.chat.delivery import stream_sequence
    with pytest.raises(ValueError):
        stream_sequence(reply)


def test_decoded_messages_decode_each_message_once_for_both_readers_and_stay_bounded():
    from system.chat.delivery import DecodedMessages
    msg = {"id": "m1", "conv": "a~b", "from": "a", "to": "b", "body": "hi", "ts": 1.0}
    decoded = DecodedMessages(size=3)
    live_copy, consumer_copy = _JsMsg(42, msg), _JsMsg(42, msg)     # the same stream message, twice
    first = decoded.get(live_copy)
    second = decoded.get(consumer_copy)
    assert first is second and first["seq"] == 42 and first["to"] == "b"
    assert live_copy.reads == 1 and consumer_copy.reads == 0        # the second reader decoded nothing
    assert decoded.by_seq == {}                                    # taken: a redelivery decodes again
    assert decoded.get(_JsMsg(42, msg)) == first
    for seq in range(100, 110):                                    # never taken (the other replica's)
        decoded.get(_JsMsg(seq, msg))
    assert list(decoded.by_seq) == [107, 108, 109]
    assert decoded.get(_JsMsg(7, b"not json")) is None
    assert decoded.get(_JsMsg(8, {"id": "x"})) is None             # fields missing
    assert decoded.get(_JsMsg(9, msg, reply="_INBOX.x.1")) is None


class _FakeSub:
    def __init__(self, log: list) -> None:
        self.log = log

    async def unsubscribe(self) -> None:
        self.log.append("unsubscribe")


class _FakeJs:
    """Creates ordered consumers; fails the first ``failures`` times, each after ``delay`` s."""

    def __init__(self, failures: int = 0, delay: float = 0.01) -> None:
        self.failures, self.delay, self.log, self.configs = failures, delay, [], []

    async def subscribe(self, subject, *, stream, config, cb, ordered_consumer, idle_heartbeat):
        await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise TimeoutError("no stream leader")
        assert ordered_consumer and stream == "CHAT"
        self.log.append(("subscribe", subject))
        self.configs.append(config)
        return _FakeSub(self.log)


def test_exile_feeds_one_consumer_per_home_region_ready_before_join_returns_and_gone_with_the_last():
    import datetime
    from types import SimpleNamespace

    from nats.js.api import DeliverPolicy

    from system.chat import exile_feed
    from system.chat.exile_feed import ExileFeeds

    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)

    async def scenario():
        js = _FakeJs()
        feeds = ExileFeeds(SimpleNamespace(js=js), wall=lambda: now)
        await asyncio.gather(feeds.join("a@us-east", "us-east"), feeds.join("b@us-east", "us-east"))
        assert js.log == [("subscribe", "chat.us-east")] and "us-east" in feeds.subs   # one, and up
        cfg = js.configs[0]
        assert cfg.deliver_policy == DeliverPolicy.BY_START_TIME
        assert cfg.opt_start_time == now - datetime.timedelta(seconds=exile_feed.START_MARGIN)
        await feeds.leave("a@us-east", "us-east")
        assert "us-east" in feeds.subs                   # b is still here
        await feeds.leave("b@us-east", "us-east")
        assert js.log[-1] == "unsubscribe" and not feeds.subs and not feeds.members
        await feeds.leave("b@us-east", "us-east")        # twice: nothing happens

        flaky = _FakeJs(failures=2)                      # JetStream not ready: retried, still in time
        feeds = ExileFeeds(SimpleNamespace(js=flaky), wall=lambda: now)
        await feeds.join("c@eu-west", "eu-west")
        assert flaky.log == [("subscribe", "chat.eu-west")] and "eu-west" in feeds.subs
        await feeds.stop()
        assert flaky.log[-1] == "unsubscribe"

        slow = _FakeJs(failures=0, delay=0.5)           # the last one leaves while it is created
        feeds = ExileFeeds(SimpleNamespace(js=slow), wall=lambda: now)
        joining = asyncio.ensure_future(feeds.join("d@eu-west", "eu-west"))
        await asyncio.sleep(0.1)
        await feeds.leave("d@eu-west", "eu-west")
        await joining
        await asyncio.sleep(0.6)
        assert not feeds.subs and not feeds.starting
    asyncio.run(scenario())


def test_an_exile_feed_delivers_only_to_exiles_of_that_region_once_each():
    from types import SimpleNamespace

    from system.chat.exile_feed import ExileFeeds

    delivered = []
    service = SimpleNamespace(js=_FakeJs(), deliver_local=lambda user, mid, ts, frame: delivered.append((user, mid)))
    feeds = ExileFeeds(service)

    def msg(seq, to, mid):
        m = _JsMsg(seq, {"id": mid, "conv": "x~y", "from": "x", "to": to, "body": "b", "ts": 1.0})
        m.subject = "chat.us-east"
        return m

    async def scenario():
        await feeds.join("a@us-east", "us-east")
        await feeds.on_message(msg(1, "a@us-east", "m1"))
        await feeds.on_message(msg(2, "z@us-east", "m2"))       # not connected here
        await feeds.on_message(msg(1, "a@us-east", "m1"))       # again (a reset consumer, the home push)
        await feeds.on_message(msg(3, "a@us-east", "m3"))
    asyncio.run(scenario())
    assert delivered == [("a@us-east", "m1"), ("a@us-east", "m3")]


def test_the_region_consumer_pushes_only_to_servers_of_other_regions():
    from types import SimpleNamespace

    from system.chat.delivery import RegionConsumer
    from system.chat.presence_replica import Origin

    published = []

    class Directory:
        async def lookup(self, users):
            where = {"a@us-east": "chat-us-east-2", "b@us-east": "chat-eu-west-1", "c@us-east": "chat-new-1",
                     "d@us-east": "chat-us-east-1"}
            return [where.get(u) for u in users]

    class Nats:
        async def publish(self, subject, payload):
            published.append((subject, [item[0] for item in protocol.loads(payload)]))

    origins = {"chat-us-east-2": Origin("chat-us-east-2", "us-east", "e1"),
               "chat-eu-west-1": Origin("chat-eu-west-1", "eu-west", "e2")}
    service = SimpleNamespace(conns={"e@us-east": set()}, directory=Directory(), name="chat-us-east-1",
                              region="us-east", nc=Nats(),
                              presence_sync=SimpleNamespace(replica=SimpleNamespace(origins=origins)))
    msgs = [{"id": f"m{i}", "conv": "x~y", "seq": i, "from": "x", "to": to, "body": "b", "ts": 1.0}
            for i, to in enumerate(["a@us-east", "b@us-east", "c@us-east", "d@us-east", "e@us-east", "f@us-east"])]
    asyncio.run(RegionConsumer(service).push(msgs))
    # a: another us-east server (its live feed has it); d: this server; e: connected here;
    # f: offline. b: an exile in eu-west; c: a server the replica has not heard of yet
    assert sorted(published) == [("deliver.chat-eu-west-1", ["b@us-east"]), ("deliver.chat-new-1", ["c@us-east"])]
