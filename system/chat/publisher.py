"""Publishing chat messages to JetStream with many publishes in flight.

``JetStreamPublisher.publish`` sends the message with ``Nats-Msg-Id`` and a reply subject under
one wildcard inbox of its own, and waits for the PubAck on a future that the inbox's single
subscription resolves: no subscription, ``wait_for`` or JSON dataclass per message, as
``js.publish`` has, and any number of sends share the connection while they wait (NATS keeps
the publishes of one connection in order, so sequences still follow the order of the sends).

An attempt that gets no PubAck within ``timeout`` fails with ``nats.errors.TimeoutError``;
``publish`` retries with backoff and jitter until its deadline, with the same message id, so
JetStream stores a retried message once and answers with the original sequence.
"""
from __future__ import annotations

import asyncio
import itertools
import random
import time

import nats.errors
import nats.js.errors
import orjson
from nats.nuid import NUID

from system.chat.streams import PUBLISH_BACKOFF, PUBLISH_RETRYABLE
from system.common.retry import retry_async

NO_RESPONDERS = "503"          # the status NATS answers a request nobody listens to with


class JetStreamPublisher:
    def __init__(self, nc, *, timeout: float, rng: random.Random | None = None) -> None:
        self.nc, self.timeout, self.rng = nc, timeout, rng or random.Random()
        self.prefix = "_INBOX." + NUID().next().decode() + "."
        self.tokens = itertools.count()
        self.waiting: dict[str, asyncio.Future] = {}
        self.sub = None

    async def start(self) -> None:
        self.sub = await self.nc.subscribe(self.prefix + "*", cb=self._on_reply)

    async def stop(self) -> None:
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except Exception:  # noqa: BLE001 - shutting down; the connection goes too
                pass
        for future in self.waiting.values():
            future.cancel()

    async def publish(self, subject: str, msg_id: str, payload: bytes, *, deadline: float) -> int:
        """The stream sequence of the stored message; the last error once ``deadline`` seconds passed."""
        return await retry_async(lambda: self.attempt(subject, msg_id, payload), retry_on=PUBLISH_RETRYABLE,
                                 deadline=time.monotonic() + deadline, policy=PUBLISH_BACKOFF, rng=self.rng)

    async def attempt(self, subject: str, msg_id: str, payload: bytes) -> int:
        """One publish and its PubAck."""
        token = str(next(self.tokens))
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting[token] = future
        timer = loop.call_later(self.timeout, self._expire, token)
        try:
            await self.nc.publish(subject, payload, reply=self.prefix + token, headers={"Nats-Msg-Id": msg_id})
            return await future
        finally:
            timer.cancel()
            self.waiting.pop(token, None)

    def _expire(self, token: str) -> None:
        future = self.waiting.pop(token, None)
        if future is not None and not future.done():
            future.set_exception(nats.errors.TimeoutError())

    async def _on_reply(self, msg) -> None:
        future = self.waiting.pop(msg.subject[len(self.prefix):], None)
        if future is None or future.done():
            return                          # timed out already: the retry gets its own answer
        if msg.headers and msg.headers.get("Status") == NO_RESPONDERS:
            future.set_exception(nats.js.errors.NoStreamResponseError())
            return
        try:
            answer = orjson.loads(msg.data)
            if "error" in answer:
                nats.js.errors.APIError.from_error(answer["error"])     # raises the error's own class
            future.set_result(answer["seq"])
        except nats.js.errors.APIError as exc:
            future.set_exception(exc)
        except (ValueError, KeyError, TypeError) as exc:
            future.set_exception(nats.js.errors.APIError(description=f"malformed PubAck: {exc}"))
