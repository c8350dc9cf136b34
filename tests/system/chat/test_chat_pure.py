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
