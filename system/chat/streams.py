"""The JetStream streams of contracts §6 and publishing to them.

``ensure_streams`` creates ``CHAT`` (``chat.*``) and ``EVENTS`` (``events.>``) idempotently:
with the configured replica count, else R3 and, when the cluster cannot place three replicas
(a one-node cluster), R1. ``publish_message`` publishes with ``Nats-Msg-Id`` and retries with
backoff and jitter until a deadline: the retry is safe because JetStream drops a duplicate
id and answers with the original sequence.
"""
from __future__ import annotations

import asyncio
import random
import time

import nats.errors
import nats.js.errors
import orjson
from nats.js.api import StorageType, StreamConfig

from lab.errors import DependencyError
from system.common.retry import Backoff, retry_async

CHAT_STREAM, EVENTS_STREAM = "CHAT", "EVENTS"
# how long CHAT keeps a message: a regional store restored from its last backup replays from
# here what came after (lab/dr), so this must exceed the backup interval (300 s) by far
CHAT_RETENTION_SECONDS = 24 * 3600.0
PUBLISH_RETRYABLE = (nats.errors.TimeoutError, nats.errors.NoRespondersError, asyncio.TimeoutError,
                     nats.js.errors.ServiceUnavailableError, nats.js.errors.NoStreamResponseError,
                     nats.errors.ConnectionClosedError, nats.errors.StaleConnectionError,
                     nats.errors.OutboundBufferLimitError)
PUBLISH_BACKOFF = Backoff(0.05, 2.0, 1.0)


async def _ensure(js, name: str, subjects: list[str], replicas: int | None, max_age: float = 0.0) -> int:
    try:
        info = await js.stream_info(name)
        return info.config.num_replicas or 1
    except nats.js.errors.NotFoundError:
        pass
    for r in ([replicas] if replicas else [3, 1]):
        try:
            await js.add_stream(StreamConfig(name=name, subjects=subjects, num_replicas=r,
                                             storage=StorageType.FILE, duplicate_window=120.0,
                                             max_age=max_age or None))
            return r
        except nats.js.errors.BadRequestError as exc:
            if "already in use" in str(exc) or "already exists" in str(exc):
                return (await js.stream_info(name)).config.num_replicas or 1
            last = exc           # e.g. replicas > 1 not supported in non-clustered mode
        except nats.js.errors.APIError as exc:
            last = exc           # insufficient resources: fewer nodes than replicas
    raise DependencyError(f"cannot create JetStream stream {name}: {last}") from last


async def ensure_streams(js, replicas: int | None = None, deadline: float = 30.0) -> dict[str, int]:
    """Create both streams if missing; the replica count each has. Retries while the cluster elects."""
    async def once():
        return {CHAT_STREAM: await _ensure(js, CHAT_STREAM, ["chat.*"], replicas, CHAT_RETENTION_SECONDS),
                EVENTS_STREAM: await _ensure(js, EVENTS_STREAM, ["events.>"], replicas)}
    return await retry_async(once, retry_on=PUBLISH_RETRYABLE + (DependencyError,),
                             deadline=time.monotonic() + deadline, policy=Backoff(0.1, 2.0, 1.0))


async def publish_message(js, subject: str, msg_id: str, payload: bytes, *, timeout: float,
                          deadline: float, rng: random.Random | None = None):
    """The PubAck of a published message; the last error when the deadline passed."""
    return await retry_async(
        lambda: js.publish(subject, payload, timeout=timeout, headers={"Nats-Msg-Id": msg_id}),
        retry_on=PUBLISH_RETRYABLE, deadline=time.monotonic() + deadline, policy=PUBLISH_BACKOFF,
        rng=rng)


def event_payload(kind: str, region: str, **fields) -> bytes:
    """An EVENTS payload ``{"id", "type", "region", "ts", ...}``; ``id`` may be given (delivered: the message id)."""
    import uuid
    return orjson.dumps({"id": fields.pop("id", None) or uuid.uuid4().hex, "type": kind, "region": region,
                         "ts": time.time(), **fields})
