"""Publishing to the JetStream streams of contracts §6 (made by :mod:`system.common.streams`).

``ensure_streams`` makes both streams, retrying while the cluster elects or is short of
nodes. ``publish_message`` publishes with ``Nats-Msg-Id`` and retries with backoff and
jitter until a deadline: the retry is safe because JetStream drops a duplicate id and
answers with the original sequence.
"""
from __future__ import annotations

import asyncio
import random
import time

import nats.errors
import nats.js.errors
import orjson

from lab.errors import DependencyError
from system.common import streams
from system.common.retry import Backoff, retry_async

PUBLISH_RETRYABLE = (nats.errors.TimeoutError, nats.errors.NoRespondersError, asyncio.TimeoutError,
                     nats.js.errors.ServiceUnavailableError, nats.js.errors.NoStreamResponseError,
                     nats.errors.ConnectionClosedError, nats.errors.StaleConnectionError,
                     nats.errors.OutboundBufferLimitError)
PUBLISH_BACKOFF = Backoff(0.05, 2.0, 1.0)


async def ensure_streams(js, replicas: int | None = None, deadline: float = 30.0) -> dict[str, int]:
    """Create both streams if missing; the replica count each has. Retries while the cluster elects."""
    return await retry_async(lambda: streams.ensure_streams(js, replicas),
                             retry_on=PUBLISH_RETRYABLE + (DependencyError,),
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
