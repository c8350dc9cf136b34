"""Catch-up from the stream on connect, so a conversation is delivered in sequence order.

A message to a user is, at any moment, either stored in PostgreSQL (the region consumer acks
only what it stored, so everything up to the consumer's *ack floor* is stored) or still in
JetStream after the ack floor: unfetched (the recipient region has no server), held by a
server that died (redelivered only after ``ack_wait``) or nak'ed while PostgreSQL is down.
The live paths (consumer push, the exile inbox) deliver only what arrives after the user
connected, so a message of the second kind sent before the connect would otherwise reach the
user late, after newer messages of the same conversation (the chaos finding: seq 418
delivered after 471), or never.

``StreamWindow`` keeps, per recipient, the messages of one region's subject ``chat.<region>``
after that region's consumer ack floor, read with a short-lived ephemeral consumer (no acks)
and extended only by what was appended since the last read. A resume replays the stored
messages and this window together, in ``seq`` order, before any live frame is released.
Concurrent connects share one read: a caller waits for a read that started after it asked.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from system.chat.delivery import decode
from system.common.streams import CHAT_STREAM

log = logging.getLogger("nineslab.chat.catchup")
READ_BATCH = 1000
MAX_WINDOW = 200_000          # messages after the ack floor kept; beyond, the catch-up is partial


class StreamWindow:
    def __init__(self, js, region: str, *, timeout: float = 1.0) -> None:
        self.js, self.region, self.timeout = js, region, timeout
        self.floor = -1                      # the ack floor the window starts after
        self.upto = 0                        # last stream sequence read
        self.size = 0
        self.by_user: dict[str, list[dict]] = collections.defaultdict(list)
        self.read_started = float("-inf")
        self.lock = asyncio.Lock()

    async def messages_for(self, user: str, since: dict[str, int]) -> list[dict]:
        """Messages to ``user`` not yet stored (after the ack floor), newer than ``since`` per conversation."""
        asked = time.monotonic()
        async with self.lock:
            if self.read_started < asked:    # no read began after we asked: read now
                self.read_started = time.monotonic()
                try:
                    await self._refresh()
                except BaseException:
                    self.read_started = float("-inf")     # a read that failed serves no one
                    raise
        return [m for m in self.by_user.get(user, ()) if m["seq"] > since.get(m["conv"], 0)]

    async def _refresh(self) -> None:
        info = await self.js.consumer_info(CHAT_STREAM, f"chat-{self.region}", timeout=self.timeout)
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        if floor < self.floor or floor > self.upto:   # a reset consumer, or everything read is stored
            self.by_user.clear()
            self.size, self.upto = 0, floor
        elif floor > self.floor:
            for user in list(self.by_user):
                kept = [m for m in self.by_user[user] if m["seq"] > floor]
                self.size -= len(self.by_user[user]) - len(kept)
                if kept:
                    self.by_user[user] = kept
                else:
                    del self.by_user[user]
        self.floor = floor
        await self._read_from(self.upto + 1)

    async def _read_from(self, start: int) -> None:
        subject = f"chat.{self.region}"
        cfg = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
                             ack_policy=AckPolicy.NONE, filter_subject=subject, inactive_threshold=10.0,
                             mem_storage=True, num_replicas=1)
        sub = await self.js.pull_subscribe(subject, stream=CHAT_STREAM, config=cfg)
        try:
            while self.size < MAX_WINDOW:
                try:
                    msgs = await sub.fetch(READ_BATCH, timeout=0.2)
                except (nats.errors.TimeoutError, asyncio.TimeoutError):
                    return                                   # nothing (more) after start
                for m in msgs:
                    self._add(m)
                if msgs[-1].metadata.num_pending == 0:
                    return
            log.warning("catch-up window of %s is full (%d messages): a resume may miss older ones",
                        self.region, self.size)
        finally:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - the ephemeral consumer expires on its own
                pass

    def _add(self, m) -> None:
        self.upto = max(self.upto, m.metadata.sequence.stream)
        data = decode(m)
        if data is not None:
            self.by_user[data["to"]].append(data)
            self.size += 1
