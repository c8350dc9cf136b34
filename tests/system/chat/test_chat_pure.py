"""Pure parts of the chat server: parsing every kind of bad frame, and the rate limit."""
from __future__ import annotations

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
