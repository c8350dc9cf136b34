"""The JetStream side of disaster recovery: which part of a region's subject a backup holds,
and the replay of what came after into a restored store.

A region's chat servers ack a ``chat.<region>`` message only once it is stored, so the
durable consumer's ack floor, read *before* the backup starts, is a sequence up to which every
message is committed and hence in the backup (``pg_basebackup`` holds everything committed
before it began). The replay reads from there with an ephemeral consumer and stores with the
chat store's own ``INSERT ... ON CONFLICT (id) DO NOTHING``, so it is idempotent: a message
stored twice stays one row, and running the replay again inserts nothing.

Sender copies (a message from this region to another is also stored here, off the ack path)
have no ack floor: they are replayed by time, from a margin before the backup began.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from lab.dr.catalog import StreamPosition
from system.chat import storage
from system.chat.delivery import decode
from system.common.streams import CHAT_STREAM

FETCH_BATCH = 1000
FETCH_TIMEOUT = 2.0
SENDER_COPY_MARGIN_SECONDS = 60.0   # a sender copy is written within this after its ack


def subject_of(region: str) -> str:
    return f"chat.{region}"


def consumer_of(region: str) -> str:
    """The region's durable consumer (system/chat/delivery.py)."""
    return f"chat-{region}"


async def position(js, region: str) -> StreamPosition:
    """Where the region's subject stands now: the stream's identity, last sequence, ack floor."""
    info = await js.stream_info(CHAT_STREAM)
    try:
        consumer = await js.consumer_info(CHAT_STREAM, consumer_of(region))
        covered = consumer.ack_floor.stream_seq if consumer.ack_floor else 0
    except nats.js.errors.NotFoundError:
        covered = 0                      # no chat server consumed yet: nothing is stored from it
    return StreamPosition(stream=CHAT_STREAM, subject=subject_of(region),
                          created=info.created.isoformat() if info.created else None,
                          covered_seq=covered or 0, last_seq=info.state.last_seq)


@dataclass
class ReplayResult:
    """What a replay read and stored."""

    from_seq: int
    to_seq: int                      # the stream's last sequence when the replay began
    scanned: int = 0                 # chat.<region> messages read
    inserted: int = 0                # of them, rows that were missing (the rest were stored)
    first_seq: int | None = None     # sequence range of the messages read
    last_seq: int | None = None
    sender_copies_scanned: int = 0
    sender_copies_inserted: int = 0
    stream_recreated: bool = False   # the stream is not the one the backup saw: replayed from its start
    gap: int = 0                     # messages after the backup that the stream no longer holds
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.gap == 0

    def to_json(self) -> dict:
        return {"from_seq": self.from_seq, "to_seq": self.to_seq, "scanned": self.scanned,
                "inserted": self.inserted, "first_seq": self.first_seq, "last_seq": self.last_seq,
                "sender_copies": {"scanned": self.sender_copies_scanned,
                                  "inserted": self.sender_copies_inserted},
                "stream_recreated": self.stream_recreated, "gap": self.gap, "complete": self.complete,
                "seconds": round(self.seconds, 3), "warnings": self.warnings}


async def _store(conn, msgs: list[dict]) -> int:
    """Rows inserted (``INSERT 0 n``): messages the store did not have."""
    if not msgs:
        return 0
    status = await conn.execute(storage.INSERT, *storage.columns(msgs))
    return int(status.rsplit(" ", 1)[-1])


async def _read(js, subject: str, cfg: ConsumerConfig, until_seq: int):
    """Batches of decoded messages on ``subject`` from the consumer's start up to ``until_seq``."""
    cfg.ack_policy, cfg.inactive_threshold = AckPolicy.NONE, 30.0
    sub = await js.pull_subscribe(subject, stream=CHAT_STREAM, config=cfg)
    name = None
    try:
        info = await sub.consumer_info()
        name, pending = info.name, info.num_pending
        while pending > 0:
            try:
                msgs = await sub.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT)
            except (nats.errors.TimeoutError, TimeoutError):
                break                    # nothing more arrived: what was pending has been read
            batch = [d for d in (decode(m) for m in msgs) if d is not None and d["seq"] <= until_seq]
            if batch:
                yield batch
            last = msgs[-1].metadata
            pending = last.num_pending
            if last.sequence.stream >= until_seq:
                break
    finally:
        with contextlib.suppress(Exception):   # ephemeral: it also goes away by itself when idle
            await sub.unsubscribe()
            if name:
                await js.delete_consumer(CHAT_STREAM, name)


async def replay(js, conn, region: str, since: StreamPosition, *, backup_started_at: float) -> ReplayResult:
    """Store every ``chat.<region>`` message after ``since`` and this region's sender copies."""
    began = time.monotonic()
    info = await js.stream_info(CHAT_STREAM)
    created = info.created.isoformat() if info.created else None
    recreated = since.created is not None and created != since.created
    start = 1 if recreated else since.covered_seq + 1
    result = ReplayResult(from_seq=start, to_seq=info.state.last_seq, stream_recreated=recreated)
    if recreated:
        result.warnings.append("the JetStream stream was re-made after the backup (a `nines up` without "
                               "--keep-streams): replayed all it holds; older messages come from the backup only")
    first = info.state.first_seq or 1
    if first > start and info.state.last_seq >= start and not recreated:
        result.gap = first - start
        result.warnings.append(f"the stream no longer holds sequences {start}..{first - 1} (retention): "
                               "messages acknowledged in that range and not in the backup are lost")
    await conn.execute(storage.SCHEMA)
    if info.state.last_seq >= start:
        cfg = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(start, first))
        async for batch in _read(js, subject_of(region), cfg, result.to_seq):
            result.scanned += len(batch)
            result.inserted += await _store(conn, batch)
            result.first_seq = result.first_seq or batch[0]["seq"]
            result.last_seq = batch[-1]["seq"]
        since_time = backup_started_at - SENDER_COPY_MARGIN_SECONDS
        cfg = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME,
                             opt_start_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since_time)))
        if recreated:
            cfg = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        async for batch in _read(js, "chat.*", cfg, result.to_seq):
            copies = [m for m in batch if m.get("from_region") == region and m.get("to_region") != region]
            result.sender_copies_scanned += len(copies)
            result.sender_copies_inserted += await _store(conn, copies)
    result.seconds = time.monotonic() - began
    return result
