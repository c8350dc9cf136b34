"""The recipient region's consumer: JetStream -> PostgreSQL (idempotent), exactly once.

Every chat server of region R pulls from one durable consumer ``chat-R`` on ``chat.R`` (a work
queue shared by the region's replicas). Replicas fetch concurrently, so the order in which they
handle batches is not the stream order: live delivery to the region's own connections therefore
comes from each server's ordered consumer (live.py), never from here. A fetched batch is
1. pushed only to recipients failed over to a server of another region ("exiles"): the session
   directory in Redis names the server; the batch goes to ``deliver.<server>`` over core NATS
   (with Redis out, to ``deliver.any``), never to a server of this region (the presence replica
   knows each server's region; such a server has them from its live feed, in order, and drops
   pushed items for users homed in its own region);
   (steps 2-3 run in a store worker over everything fetched meanwhile, so fetching and pushing
   never wait for PostgreSQL and one INSERT covers many fetches under load)
2. stored in one ``INSERT ... ON CONFLICT (id) DO NOTHING`` and added to the Redis recent-history
   cache;
3. acked to JetStream only when stored. When PostgreSQL is down the batch is nak'ed with a
   delay and comes back later: nothing is lost, and nothing is pushed twice by this server
   (``pushed`` remembers ids; a client also drops duplicates by id).
A message's ``seq`` is its CHAT stream sequence (see docs/chat-protocol.md, "Sequences").
"""
from __future__ import annotations

import asyncio
import collections
import logging

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from lab.errors import DependencyError
from system.chat import protocol
from system.common.streams import CHAT_STREAM

log = logging.getLogger("nineslab.chat.delivery")
REQUIRED = ("id", "conv", "from", "to", "body", "ts")
MAX_UNSTORED = 20_000         # fetched and pushed, not yet stored: beyond this, fetching waits
STORE_BATCH = 2_000           # messages a single INSERT stores


def deliver_subject(server: str) -> str:
    return f"deliver.{server}"


ANY_SUBJECT = "deliver.any"


class PushedIds:
    """Ids this server already pushed, bounded (oldest forgotten first)."""

    def __init__(self, size: int = 100_000) -> None:
        self.size, self.ids = size, collections.OrderedDict()

    def add_new(self, mid: str) -> bool:
        if mid in self.ids:
            return False
        self.ids[mid] = None
        if len(self.ids) > self.size:
            self.ids.popitem(last=False)
        return True


def stream_sequence(reply: str) -> int:
    """The stream sequence in a JetStream message's ack subject, without building nats-py's
    ``Metadata`` (a dataclass and a datetime a message): ``$JS.ACK.<stream>.<consumer>.<delivered>.
    <stream seq>...`` (9 tokens), or with a domain and an account hash in front (12 or more)."""
    tokens = reply.split(".")
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        raise ValueError(f"not a JetStream ack subject: {reply[:80]!r}")
    return int(tokens[5] if len(tokens) == 9 else tokens[7])


def decode(msg) -> dict | None:
    try:
        data = protocol.loads(msg.data)
        if not isinstance(data, dict) or any(k not in data for k in REQUIRED):
            return None
        data["seq"] = stream_sequence(msg.reply)
        return data
    except (ValueError, AttributeError, TypeError):
        return None


class DecodedMessages:
    """Messages of the region's subject decoded once per server.

    Both the live feed (live.py) and the region consumer receive every message of ``chat.R``;
    whichever comes first decodes it and leaves the result here under its stream sequence, the
    other takes it out. The results are shared, never changed. At most ``size`` wait (a message
    the other replica of the region fetched is never taken here): the oldest go first, and a
    message not found is simply decoded again.
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self.by_seq: collections.OrderedDict[int, dict] = collections.OrderedDict()

    def get(self, msg) -> dict | None:
        try:
            seq = stream_sequence(msg.reply)
        except (ValueError, AttributeError, TypeError):
            return None
        data = self.by_seq.pop(seq, None)
        if data is not None:
            return data
        data = decode(msg)
        if data is not None:
            self.by_seq[seq] = data
            if len(self.by_seq) > self.size:
                self.by_seq.popitem(last=False)
        return data


class RegionConsumer:
    def __init__(self, service) -> None:
        self.s = service
        self.pushed = PushedIds()
        self.sub = None
        self.task: asyncio.Task | None = None
        self.unstored: list[tuple[dict, object]] = []
        self.have_unstored = asyncio.Event()
        self.stored_some = asyncio.Event()

    async def start(self) -> None:
        region = self.s.region
        cfg = ConsumerConfig(durable_name=f"chat-{region}", ack_policy=AckPolicy.EXPLICIT,
                             deliver_policy=DeliverPolicy.ALL, ack_wait=self.s.settings.ack_wait, max_deliver=-1,
                             max_ack_pending=50_000, filter_subject=f"chat.{region}")
        self.sub = await self.s.js.pull_subscribe(f"chat.{region}", durable=f"chat-{region}",
                                                  stream=CHAT_STREAM, config=cfg)
        self.task = asyncio.create_task(self.run(), name="region-consumer")

    async def run(self) -> None:
        """Fetch and push at once; a store worker stores and acks what accumulated meanwhile, so
        under load one INSERT covers many fetches (at most ``MAX_UNSTORED`` messages wait)."""
        batch = self.s.settings.consumer_batch
        worker = asyncio.ensure_future(self.store_worker())
        try:
            while True:
                while len(self.unstored) >= MAX_UNSTORED:
                    self.stored_some.clear()
                    await self.stored_some.wait()
                try:
                    msgs = await self.sub.fetch(batch, timeout=1.0)
                except (nats.errors.TimeoutError, asyncio.TimeoutError):
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - NATS down or leader moving: wait and pull again
                    log.warning("fetch failed: %s", exc)
                    await asyncio.sleep(0.5)
                    continue
                good, raw = await self.decode_batch(msgs)
                if not good:
                    continue
                try:
                    await self.push([d for d in good if self.pushed.add_new(d["id"])])
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - a bug must not stop delivery; the batch is still stored
                    log.exception("push of a batch of %d failed; storing it anyway", len(msgs))
                self.unstored.extend(zip(good, raw))
                self.have_unstored.set()
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    async def store_worker(self) -> None:
        while True:
            await self.have_unstored.wait()
            self.have_unstored.clear()
            while self.unstored:
                items, self.unstored = self.unstored[:STORE_BATCH], self.unstored[STORE_BATCH:]
                try:
                    await self.store_and_ack([g for g, _ in items], [r for _, r in items])
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - not acked: JetStream redelivers after ack_wait
                    log.exception("storing %d messages failed", len(items))
                self.stored_some.set()

    async def decode_batch(self, msgs) -> tuple[list[dict], list]:
        good, raw = [], []
        for m in msgs:
            data = self.s.decoded.get(m)
            if data is None:
                log.error("dropping a malformed message on %s", m.subject)
                await m.term()
                continue
            good.append(data)
            raw.append(m)
        return good, raw

    async def handle(self, msgs) -> None:
        """One batch start to end (push, store, ack): what ``run`` does, in one call."""
        good, raw = await self.decode_batch(msgs)
        if good:
            await self.push([d for d in good if self.pushed.add_new(d["id"])])
            await self.store_and_ack(good, raw)

    async def store_and_ack(self, good: list[dict], raw: list) -> None:
        try:
            await self.s.store.store_many(good)
        except DependencyError:
            delay = self.s.settings.redelivery_delay
            for m in raw:
                await m.nak(delay=delay)
            self.s.m_store_retries.inc(len(raw))
            return
        except Exception:  # noqa: BLE001 - not acked: JetStream redelivers after ack_wait
            log.exception("storing a batch of %d failed", len(good))
            return
        try:
            await self.s.cache.add([(d["to"], protocol.encode(d)) for d in good])
        except DependencyError:
            pass                       # the cache is a fallback; PostgreSQL has the message
        ack = self.s.publisher.writer.publish
        for m in raw:
            ack(m.reply, b"")                # what Msg.ack sends, gathered into one write
        self.s.m_stored.inc(len(good))

    async def push(self, msgs: list[dict]) -> None:
        if not msgs:
            return
        local = self.s.conns
        users = list({d["to"] for d in msgs if d["to"] not in local})   # held here: the live feed's job
        servers: dict[str, str] = {}
        fallback = False
        try:
            servers.update(zip(users, await self.s.directory.lookup(users)))
        except DependencyError:
            fallback = True
        by_server: dict[str, list] = collections.defaultdict(list)
        for d in msgs:
            target = servers.get(d["to"])
            if d["to"] in local or target == self.s.name or self.same_region(target):
                continue
            frame = protocol.message_frame(d)
            if target:
                by_server[deliver_subject(target)].append([d["to"], d["id"], d.get("sent_ts"), frame])
            elif fallback:
                by_server[ANY_SUBJECT].append([d["to"], d["id"], d.get("sent_ts"), frame])
        for subject, items in by_server.items():
            try:
                await self.s.nc.publish(subject, protocol.encode(items))
            except Exception as exc:  # noqa: BLE001 - the recipient resumes from the store later
                log.warning("push to %s failed: %s", subject, exc)

    def same_region(self, server: str | None) -> bool:
        """Whether ``server`` is another server of this region (its live feed has the message,
        and it would drop the push): the presence replica knows every server's region. A server
        it does not know yet gets the push."""
        origin = self.s.presence_sync.replica.origins.get(server) if server else None
        return origin is not None and origin.region == self.s.region

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.sub:
            try:
                await self.sub.unsubscribe()
            except Exception:  # noqa: BLE001 - shutting down
                pass
