"""The chat wire protocol (docs/chat-protocol.md): parsing client frames and building server
frames. Pure: no I/O, so every bad-input case is tested as a table.

``parse_client_frame(text, limits)`` returns a ``Send``, ``ClientAck``, ``Resume`` or ``Ping``,
or raises ``FrameError(code, message, client_id)`` which the server turns into an error frame.
"""
from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from typing import Iterator

import orjson

from lab.errors import UsageError
from system.common.regions import USER_RE

# error codes of error frames
BAD_JSON = "bad_json"
BAD_FRAME = "bad_frame"
TOO_LARGE = "too_large"
UNKNOWN_RECIPIENT = "unknown_recipient"
RATE_LIMITED = "rate_limited"
UNAVAILABLE = "unavailable"
INTERNAL = "internal"

# WebSocket close codes
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008          # a flood that ignored rate_limited errors
CLOSE_TOO_BIG = 1009         # a frame larger than the transport limit
CLOSE_TRY_AGAIN = 1013       # the server is shutting down or overloaded: reconnect via a router
CLOSE_UNAUTHORIZED = 4401    # bad token (only when the HTTP 401 denial cannot be sent)

MAX_CLIENT_ID = 128
MAX_SINCE_ENTRIES = 10_000


class FrameError(UsageError):
    def __init__(self, code: str, message: str, client_id: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.client_id = code, message, client_id


@dataclass(frozen=True)
class Send:
    client_id: str
    to: str
    body: str
    sent_ts: float | None


@dataclass(frozen=True)
class ClientAck:
    id: str


@dataclass(frozen=True)
class Resume:
    since: dict[str, int]


@dataclass(frozen=True)
class Ping:
    pass


def parse_client_frame(text: str | bytes, max_message_bytes: int):
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            raise FrameError(BAD_JSON, "frame is not UTF-8 text") from None
    if len(text) > max_message_bytes + 4096:
        raise FrameError(TOO_LARGE, f"frame of {len(text)} characters exceeds the limit of "
                                    f"{max_message_bytes} bytes of body")
    try:
        frame = orjson.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:     # orjson's error is a JSONDecodeError
        raise FrameError(BAD_JSON, f"frame is not valid JSON: {getattr(exc, 'msg', exc)}") from None
    if not isinstance(frame, dict):
        raise FrameError(BAD_FRAME, "frame must be a JSON object with a 'type'")
    kind = frame.get("type")
    client_id = frame.get("client_id")
    client_id = client_id if isinstance(client_id, str) and len(client_id) <= MAX_CLIENT_ID else None
    if kind == "send":
        return _parse_send(frame, client_id, max_message_bytes)
    if kind == "ack":
        mid = frame.get("id")
        if not isinstance(mid, str) or not mid or len(mid) > 64:
            raise FrameError(BAD_FRAME, "ack needs 'id', the message id (a string)")
        return ClientAck(mid)
    if kind == "resume":
        since = frame.get("since", {})
        if not isinstance(since, dict) or len(since) > MAX_SINCE_ENTRIES:
            raise FrameError(BAD_FRAME, "resume needs 'since', an object of conversation -> sequence")
        clean = {}
        for conv, seq in since.items():
            if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2 ** 62:
                raise FrameError(BAD_FRAME, f"resume: sequence of {conv[:140]!r} must be an integer >= 0")
            clean[conv] = seq
        return Resume(clean)
    if kind == "ping":
        return Ping()
    raise FrameError(BAD_FRAME, f"unknown frame type {str(kind)[:40]!r}: expected send, ack, resume or ping",
                     client_id)


def _parse_send(frame: dict, client_id: str | None, limit: int) -> Send:
    if client_id is None:
        raise FrameError(BAD_FRAME, f"send needs 'client_id', a string of at most {MAX_CLIENT_ID} characters")
    to, body, sent_ts = frame.get("to"), frame.get("body"), frame.get("sent_ts")
    if not isinstance(to, str) or not USER_RE.match(to):
        raise FrameError(UNKNOWN_RECIPIENT, f"unknown recipient {str(to)[:80]!r}: a user id is 1-64 "
                                            "characters of A-Z a-z 0-9 _ . @ -", client_id)
    if not isinstance(body, str):
        raise FrameError(BAD_FRAME, "send needs 'body', a string", client_id)
    size = len(body.encode())
    if size > limit:
        raise FrameError(TOO_LARGE, f"message body of {size} bytes exceeds the limit of {limit} bytes",
                         client_id)
    if sent_ts is not None and (not isinstance(sent_ts, (int, float)) or isinstance(sent_ts, bool)):
        raise FrameError(BAD_FRAME, "send: 'sent_ts' must be a number (unix seconds)", client_id)
    return Send(client_id, to, body, float(sent_ts) if sent_ts is not None else None)


def dumps(frame: dict) -> str:
    return orjson.dumps(frame).decode()


def encode(obj) -> bytes:
    """A NATS payload (message JSON, deliver batches, events): compact JSON bytes."""
    return orjson.dumps(obj)


loads = orjson.loads            # JSON from NATS payloads (bytes) or Redis


def message_ids(prefix: bytes | None = None) -> Iterator[str]:
    """Message ids of one server process: 32 hex digits like a uuid4's, a random 64-bit prefix
    and a counter, so ids stay unique across servers and restarts without 16 random bytes a message."""
    head = (prefix or os.urandom(8)).hex()
    return (f"{head}{n:016x}" for n in itertools.count())


def error_frame(code: str, message: str, client_id: str | None = None) -> str:
    return dumps({"type": "error", "client_id": client_id, "code": code, "message": message})


def ack_frame(client_id: str, mid: str, conv: str, seq: int, ts: float) -> str:
    return dumps({"type": "ack", "client_id": client_id, "id": mid, "conv": conv, "seq": seq, "ts": ts})


def message_frame(msg: dict) -> str:
    return dumps({"type": "message", "id": msg["id"], "conv": msg["conv"], "seq": msg["seq"],
                  "from": msg["from"], "to": msg["to"], "body": msg["body"],
                  "sent_ts": msg.get("sent_ts"), "ts": msg["ts"]})
