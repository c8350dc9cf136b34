"""Live delivery to users failed over to this server, read from their home region's stream.

A user whose home region has no healthy server is routed to another region ("an exile").
Messages to them are still published to ``chat.<home>``. While at least one exile of region H
is connected here, this server reads ``chat.H`` with an ordered consumer, as its own region's
live feed reads ``chat.<region>`` (live.py), and delivers, in stream order, each message whose
recipient is an exile of H connected here. When the last one leaves, the consumer goes.

Why not a copy from the sender: a sender cannot know that the recipient fails over at this
very moment, so it had to publish a copy of every message on core NATS just in case (one
publish a message, nearly always to nobody). Here the cost is paid only while exiles exist,
and nothing slips between the paths: ``join`` returns only once the consumer exists, before
the exile's resume reads the stream and the store (catchup.py), so a message is in that
replay, or in this feed, or both (live frames are held until the replay and deduplicated
against it by id). The consumer starts ``START_MARGIN`` seconds in the past, so a consumer
that could only be created late (JetStream electing a leader) still misses nothing.

The home region's consumer also pushes to exiles it finds in the session directory
(delivery.py); that duplicate is dropped by ``pushed`` here or by the client, by id.
"""
from __future__ import annotations

import asyncio
import datetime
import logging

from nats.js.api import ConsumerConfig, DeliverPolicy

from system.chat import protocol
from system.chat.delivery import PushedIds, decode
from system.common.streams import CHAT_STREAM

log = logging.getLogger("nineslab.chat.exile")

START_MARGIN = 2.0           # seconds of the home stream read again when a feed starts
JOIN_WAIT = 3.0              # how long a join waits for the consumer before the resume goes on
RETRY_EVERY = 0.5


class ExileFeeds:
    """One ordered consumer per home region with exiles connected here."""

    def __init__(self, service, *, wall=None) -> None:
        self.s = service
        self.wall = wall or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.members: dict[str, set[str]] = {}          # home region -> exiles connected here
        self.subs: dict[str, object] = {}               # home region -> its ordered consumer
        self.starting: dict[str, asyncio.Task] = {}     # home region -> the task creating it
        self.pushed = PushedIds()
        self.m_feeds = None
        if getattr(service, "metrics", None) is not None:
            self.m_feeds = service.metrics.gauge("chat_exile_feeds", "Home regions whose stream is read here "
                                                 "for failed-over users", ("region",))

    def _gauge(self, home: str, value: int) -> None:
        if self.m_feeds is not None:
            self.m_feeds.labels(home).set(value)

    async def join(self, user: str, home: str) -> None:
        """``user`` (homed in ``home``) is connected here: their home feed runs when this returns
        (or, if JetStream cannot create it within ``JOIN_WAIT``, as soon as it can)."""
        self.members.setdefault(home, set()).add(user)
        if home in self.subs:
            return
        task = self.starting.get(home)
        if task is None:
            since = self.wall() - datetime.timedelta(seconds=START_MARGIN)
            task = self.starting[home] = asyncio.ensure_future(self._start(home, since))
        await asyncio.wait([task], timeout=JOIN_WAIT)     # neither cancels it nor raises its end
        if not task.done():
            log.warning("exile feed of %s not up within %.0f s; still trying", home, JOIN_WAIT)

    async def leave(self, user: str, home: str) -> None:
        users = self.members.get(home)
        if users is None:
            return
        users.discard(user)
        if users:
            return
        del self.members[home]
        task = self.starting.pop(home, None)
        if task is not None:
            task.cancel()
        sub = self.subs.pop(home, None)
        if sub is not None:
            self._gauge(home, 0)
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - the ephemeral consumer expires on its own
                pass

    async def _start(self, home: str, since: datetime.datetime) -> None:
        cfg = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since)
        try:
            while home in self.members:
                try:
                    sub = await self.s.js.subscribe(f"chat.{home}", stream=CHAT_STREAM, config=cfg,
                                                    cb=self.on_message, ordered_consumer=True,
                                                    idle_heartbeat=2.0)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - no stream leader yet, NATS down: try again
                    log.info("exile feed of %s: %s", home, exc)
                    await asyncio.sleep(RETRY_EVERY)
                    continue
                if home in self.members and home not in self.subs:
                    self.subs[home] = sub
                    self._gauge(home, 1)
                else:                                   # everyone left meanwhile
                    await sub.unsubscribe()
                return
        finally:
            if self.starting.get(home) is asyncio.current_task():
                del self.starting[home]

    async def on_message(self, msg) -> None:
        data = decode(msg)
        if data is None:
            return
        user = data["to"]
        home = msg.subject.partition(".")[2]
        if user not in self.members.get(home, ()) or not self.pushed.add_new(data["id"]):
            return
        self.s.deliver_local(user, data["id"], data.get("sent_ts"), protocol.message_frame(data))

    async def stop(self) -> None:
        for task in self.starting.values():
            task.cancel()
        for sub in self.subs.values():
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - shutting down
                pass
        self.subs.clear()
        self.members.clear()
