"""Publishing chat messages to JetStream with many publishes in flight.

``JetStreamPublisher.submit`` writes the message with ``Nats-Msg-Id`` and a reply subject under
one wildcard inbox of its own (nats_writes.py: into the client's buffer, no task) and calls
``done(seq, None)`` when the inbox's single subscription gets the PubAck, or ``done(None, exc)``
when it gives up: no subscription, ``wait_for``, task or JSON dataclass per message, as
``js.publish`` has, and any number of sends share the connection while they wait (NATS keeps
the publishes of one connection in order, so sequences follow the order of the submits).
``publish`` is the same as a coroutine.

An attempt that gets no PubAck within ``timeout`` fails with ``nats.errors.TimeoutError``; a
retryable failure is tried again after a backoff with jitter until the deadline, with the same
message id, so JetStream stores a retried message once and answers with the original sequence.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from typing import Callable

import nats.errors
import nats.js.errors
import orjson
from nats.nuid import NUID

from system.chat.nats_writes import NatsWriter
from system.chat.streams import PUBLISH_BACKOFF, PUBLISH_RETRYABLE
from system.common.retry import Backoff

log = logging.getLogger("nineslab.chat.publisher")
NO_RESPONDERS = "503"          # the status NATS answers a request nobody listens to with

Done = Callable[[int | None, BaseException | None], None]


class _Publish:
    """One message on its way: the attempts share its id, payload and deadline."""

    __slots__ = ("subject", "msg_id", "payload", "deadline", "done", "attempts", "timer")

    def __init__(self, subject: str, msg_id: str, payload: bytes, deadline: float, done: Done) -> None:
        self.subject, self.msg_id, self.payload, self.deadline, self.done = subject, msg_id, payload, deadline, done
        self.attempts = 0
        self.timer: asyncio.TimerHandle | None = None


class JetStreamPublisher:
    def __init__(self, nc, *, timeout: float, rng: random.Random | None = None,
                 policy: Backoff = PUBLISH_BACKOFF, clock: Callable[[], float] = time.monotonic,
                 writer: NatsWriter | None = None) -> None:
        self.nc, self.timeout, self.rng = nc, timeout, rng or random.Random()
        self.policy, self.clock = policy, clock
        self.writer = writer or NatsWriter(nc)
        self.prefix = "_INBOX." + NUID().next().decode() + "."
        self.tokens = itertools.count()
        self.waiting: dict[str, _Publish] = {}
        self.sub = None
        self.stopped = False

    async def start(self) -> None:
        self.sub = await self.nc.subscribe(self.prefix + "*", cb=self._on_reply)

    async def stop(self) -> None:
        self.stopped = True
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except Exception:  # noqa: BLE001 - shutting down; the connection goes too
                pass
        waiting, self.waiting = list(self.waiting.values()), {}
        for p in waiting:
            if p.timer is not None:
                p.timer.cancel()
            self._call(p, None, asyncio.CancelledError())

    def submit(self, subject: str, msg_id: str, payload: bytes, *, deadline: float, done: Done) -> None:
        """Publish until JetStream stores it; ``done(seq, None)``, or ``done(None, last error)``
        once ``deadline`` seconds passed or the error is not one to retry. Never calls ``done``
        before returning."""
        self._attempt(_Publish(subject, msg_id, payload, self.clock() + deadline, done))

    async def publish(self, subject: str, msg_id: str, payload: bytes, *, deadline: float) -> int:
        """The stream sequence of the stored message; the last error once ``deadline`` seconds passed."""
        future = asyncio.get_running_loop().create_future()

        def done(seq, exc) -> None:
            if future.done():
                return
            if exc is None:
                future.set_result(seq)
            elif isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
        self.submit(subject, msg_id, payload, deadline=deadline, done=done)
        return await future

    def _attempt(self, p: _Publish) -> None:
        if self.stopped:
            self._call(p, None, nats.errors.ConnectionClosedError())
            return
        token = str(next(self.tokens))
        self.waiting[token] = p
        p.timer = asyncio.get_running_loop().call_later(self.timeout, self._answer, token, None,
                                                        nats.errors.TimeoutError())
        self.writer.publish(p.subject, p.payload, reply=self.prefix + token, msg_id=p.msg_id,
                            on_error=lambda exc: self._answer(token, None, exc))

    def _answer(self, token: str, seq: int | None, exc: BaseException | None) -> None:
        """The outcome of one attempt: a late answer to an attempt already given up is ignored."""
        p = self.waiting.pop(token, None)
        if p is None:
            return                          # timed out already: the retry gets its own answer
        p.timer.cancel()
        if exc is not None and isinstance(exc, PUBLISH_RETRYABLE) and not self.stopped:
            pause = self.policy.delay(p.attempts, self.rng)
            if self.clock() + pause <= p.deadline:
                p.attempts += 1
                asyncio.get_running_loop().call_later(pause, self._attempt, p)
                return
        self._call(p, seq, exc)

    @staticmethod
    def _call(p: _Publish, seq: int | None, exc: BaseException | None) -> None:
        try:
            p.done(seq, exc)
        except Exception:  # noqa: BLE001 - a bug in one caller must not stop the PubAcks of the others
            log.exception("a publish callback failed")

    async def _on_reply(self, msg) -> None:
        token = msg.subject[len(self.prefix):]
        if token not in self.waiting:
            return
        if msg.headers and msg.headers.get("Status") == NO_RESPONDERS:
            self._answer(token, None, nats.js.errors.NoStreamResponseError())
            return
        try:
            answer = orjson.loads(msg.data)
            if "error" in answer:
                nats.js.errors.APIError.from_error(answer["error"])     # raises the error's own class
            seq = answer["seq"]
        except nats.js.errors.APIError as exc:
            self._answer(token, None, exc)
        except (ValueError, KeyError, TypeError) as exc:
            self._answer(token, None, nats.js.errors.APIError(description=f"malformed PubAck: {exc}"))
        else:
            self._answer(token, seq, None)
