"""Live delivery to this server's own connections, in stream order.

Every chat server of region R reads ``chat.R`` with its own ordered consumer (ephemeral, no
acks, starting with new messages) and delivers each message whose recipient is connected
here. The stream order is the ``seq`` order, so a conversation arrives in sequence however
the region's replicas share the work-queue consumer ``chat-R`` (delivery.py), which only
stores and acks, and pushes to recipients failed over to servers of other regions. A message
published before this feed started reaches a recipient through the resume replay on connect;
live frames wait for that replay (``ChatService.deliver_local`` holds them).
"""
from __future__ import annotations

import logging

from nats.js.api import DeliverPolicy

from system.chat import protocol
from system.chat.delivery import PushedIds
from system.common.streams import CHAT_STREAM

log = logging.getLogger("nineslab.chat.live")


class LiveFeed:
    def __init__(self, service) -> None:
        self.s = service
        self.pushed = PushedIds()
        self.sub = None

    async def start(self) -> None:
        # an ordered consumer recreates itself from the last sequence it saw after a gap or a
        # reconnect (nats-py), so nothing in between is skipped or repeated
        self.sub = await self.s.js.subscribe(f"chat.{self.s.region}", stream=CHAT_STREAM, cb=self.on_message,
                                             ordered_consumer=True, deliver_policy=DeliverPolicy.NEW,
                                             idle_heartbeat=2.0)

    async def on_message(self, msg) -> None:
        data = self.s.decoded.get(msg)     # the region consumer takes the same result
        if data is None or data["to"] not in self.s.conns or not self.pushed.add_new(data["id"]):
            return
        self.s.deliver_local(data["to"], data["id"], data.get("sent_ts"), protocol.message_frame(data))

    async def stop(self) -> None:
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except Exception:  # noqa: BLE001 - shutting down; the ephemeral consumer expires
                pass
