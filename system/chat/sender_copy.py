"""The sender's copy of a message, so senders see what they sent in their own history.

The authoritative copy is stored by the recipient's region (delivery.py). When the sending
server is in another region, it also stores the acked message in its own region, off the
ack path: acked messages are queued here and written in batches; while PostgreSQL is down
the queue waits and retries (bounded: beyond ``limit`` the oldest copies are dropped and
counted, never the recipient's copy, which JetStream holds).
"""
from __future__ import annotations

import asyncio
import collections
import logging

from lab.errors import DependencyError
from system.chat import protocol

log = logging.getLogger("nineslab.chat.sender_copy")


class SenderCopies:
    def __init__(self, service, limit: int = 100_000, batch: int = 500) -> None:
        self.s, self.limit, self.batch = service, limit, batch
        self.queue: collections.deque[dict] = collections.deque()
        self.wake = asyncio.Event()
        self.dropped = 0
        self.task: asyncio.Task | None = None

    def add(self, msg: dict) -> None:
        self.queue.append(msg)
        if len(self.queue) > self.limit:
            self.queue.popleft()
            self.dropped += 1
        self.wake.set()

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name="sender-copies")

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.queue:
                items = [self.queue[i] for i in range(min(self.batch, len(self.queue)))]
                try:
                    await self.s.cache.add([(m["from"], protocol.encode(m)) for m in items])
                except DependencyError:
                    pass
                remote = [m for m in items if m.get("to_region") != self.s.region]
                if remote:
                    try:
                        await self.s.store.store_many(remote)
                    except DependencyError:
                        await asyncio.sleep(self.s.settings.redelivery_delay)
                        continue
                for _ in items:
                    self.queue.popleft()

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
