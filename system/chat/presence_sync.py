"""Presence synchronised across regions over core NATS: the I/O shell of ``PresenceReplica``.

Every chat server is an origin (see presence_replica.py) and a replica:

- ``presence.feed.<region>``, ``"kind": "delta"``: its changes, batched for
  ``presence_flush_interval`` and sent fire-and-forget (a NATS publish only fills the client's
  buffer, so presence never holds up message delivery):
  ``{"kind", "server", "region", "epoch", "seq", "ts", "changes": [[user, state, ts]]}``;
- the same subject, ``"kind": "hb"``: every ``presence_heartbeat`` its ``epoch`` and latest
  ``seq`` (``"leaving": true`` when it stops cleanly). One subject for both, so a replica
  reads an origin's heartbeat after the deltas it counts (NATS keeps one publisher's order
  per subscription; two subscriptions would race and ask for needless snapshots);
- ``presence.sync.<server>``: request-reply for its full state, asked by a replica that
  found a gap (a cut route drops core NATS messages) or a new origin.

Why core NATS and not a JetStream KV bucket: KV writes need the quorum of the R3 stream, so
the region cut off from the majority could not even record its own users' presence, and
a KV read on the minority side fails or silently returns an old value. With per-origin
deltas each region keeps working on its own side of a partition and the replica knows
exactly whom it has not heard from, which is what "stale" means.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid

from system.chat.presence_replica import Answer, PresenceReplica

log = logging.getLogger("nineslab.chat.presence")

PROPAGATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5)


class PresenceSync:
    def __init__(self, server: str, region: str, regions: list[str], *, heartbeat: float,
                 stale_after: float, flush_interval: float, metrics=None,
                 clock=time.monotonic, wall=time.time) -> None:
        self.server, self.region = server, region
        self.subject = f"presence.feed.{region}"
        self.heartbeat, self.flush_interval = heartbeat, flush_interval
        self.clock, self.wall = clock, wall
        # a server is dead after three missed heartbeats while its region is still heard
        self.replica = PresenceReplica(regions, stale_after=stale_after, down_after=max(stale_after, 3 * heartbeat))
        self.epoch = uuid.uuid4().hex[:12]
        self.seq = 0
        self.local: dict[str, float] = {}            # users connected here -> online since
        self.pending: list[list] = []
        self.nc = None
        self.tasks: list[asyncio.Task] = []
        self.syncing: dict[str, asyncio.Future] = {}     # server -> its snapshot fetch in flight
        self.wake = asyncio.Event()
        self.m_propagation = self.m_syncs = None
        if metrics is not None:
            self.m_propagation = metrics.histogram(
                "chat_presence_propagation_seconds",
                "From a presence change at its origin to its arrival here (other regions only)", PROPAGATION_BUCKETS)
            self.m_syncs = metrics.counter("chat_presence_syncs", "Full presence snapshots fetched from an origin")

    # ---- life cycle -------------------------------------------------------------------
    async def start(self, nc) -> None:
        self.nc = nc
        await nc.subscribe("presence.feed.*", cb=self._on_feed)
        await nc.subscribe(f"presence.sync.{self.server}", cb=self._on_sync_request)
        self.tasks = [asyncio.create_task(self._flusher(), name="presence-flush"),
                      asyncio.create_task(self._beater(), name="presence-heartbeat")]

    async def stop(self) -> None:
        tasks = [*self.tasks, *self.syncing.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.publish(self.subject, self._envelope("hb", leaving=True))

    # ---- this server's changes ----------------------------------------------------------
    def online(self, user: str) -> None:
        ts = self.wall()
        self.local[user] = ts
        self._change(user, "online", ts)

    def offline(self, user: str) -> None:
        if self.local.pop(user, None) is not None:
            self._change(user, "offline", self.wall())

    def _change(self, user: str, state: str, ts: float) -> None:
        self.pending.append([user, state, ts])
        self.wake.set()

    async def _flusher(self) -> None:
        while True:
            await self.wake.wait()
            await asyncio.sleep(self.flush_interval)      # batch what arrives meanwhile
            self.wake.clear()
            changes, self.pending = self.pending, []
            self.seq += 1
            await self._publish(self._envelope("delta", changes=changes))

    async def _beater(self) -> None:
        while True:
            await self._publish(self._envelope("hb"))
            self.replica.expire(self.clock())
            await asyncio.sleep(self.heartbeat)

    def _envelope(self, kind: str, **extra) -> bytes:
        return json.dumps({"kind": kind, "server": self.server, "region": self.region, "epoch": self.epoch,
                           "seq": self.seq, "ts": self.wall(), **extra}).encode()

    async def _publish(self, payload: bytes) -> None:
        # fire-and-forget: a lost message shows as a gap in seq and is repaired by a sync
        with contextlib.suppress(Exception):
            await self.nc.publish(self.subject, payload)

    # ---- other origins ------------------------------------------------------------------
    async def _on_feed(self, msg) -> None:
        data = _decode(msg.data, ("kind", "server", "region", "epoch", "seq", "ts"))
        if data is None:
            return
        try:
            if data["kind"] == "hb":
                self._heartbeat(data)
            elif data["kind"] == "delta" and "changes" in data:
                self._delta(data)
        except (TypeError, ValueError) as exc:        # not from a chat server of ours: drop it
            log.info("presence message dropped: %s", exc)

    def _delta(self, data: dict) -> None:
        changes = [(str(u), str(s), float(t)) for u, s, t in data["changes"]]
        if self.m_propagation is not None and data["region"] != self.region:
            now = self.wall()
            for _, _, ts in changes:
                self.m_propagation.observe(max(0.0, now - ts))
        if self.replica.delta(data["server"], data["region"], data["epoch"], int(data["seq"]), float(data["ts"]),
                              changes, self.clock()):
            self._sync(data["server"])

    def _heartbeat(self, data: dict) -> None:
        if data.get("leaving"):
            self.replica.leave(data["server"], data["epoch"], float(data["ts"]))
        elif self.replica.heartbeat(data["server"], data["region"], data["epoch"], int(data["seq"]),
                                    float(data["ts"]), self.clock()):
            self._sync(data["server"])

    def _sync(self, server: str) -> None:
        if server not in self.syncing:
            # the dict holds the task: the event loop keeps only a weak reference to it
            self.syncing[server] = asyncio.ensure_future(self._fetch_snapshot(server))
            self.syncing[server].add_done_callback(lambda _: self.syncing.pop(server, None))

    async def _fetch_snapshot(self, server: str) -> None:
        try:
            reply = await self.nc.request(f"presence.sync.{server}", b"", timeout=max(0.5, self.heartbeat))
        except Exception as exc:  # noqa: BLE001 - no answer: the next heartbeat asks again
            log.info("presence sync from %s failed: %s", server, type(exc).__name__)
            return
        data = _decode(reply.data, ("server", "region", "epoch", "seq", "ts", "users"))
        if data is None or not isinstance(data["users"], dict):
            return
        self.replica.snapshot(data["server"], data["region"], data["epoch"], int(data["seq"]), float(data["ts"]),
                              {str(u): float(t) for u, t in data["users"].items()}, self.clock())
        if self.m_syncs is not None:
            self.m_syncs.inc()

    async def _on_sync_request(self, msg) -> None:
        # the state as of self.seq plus changes not yet flushed: re-applying those is harmless
        with contextlib.suppress(Exception):
            await msg.respond(self._envelope("snapshot", users=self.local))

    # ---- answers ----------------------------------------------------------------------
    def query(self, user: str, home: str) -> Answer:
        return self.replica.query(user, home, self.clock())


def _decode(raw: bytes, keys: tuple[str, ...]) -> dict | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or any(k not in data for k in keys):
        return None
    return data
