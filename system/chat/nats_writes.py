"""Core NATS publishes from synchronous code, into the client's own write buffer.

``nats-py``'s ``publish`` is a coroutine, so synchronous code (a WebSocket frame handler, a
PubAck callback) needs a task for each publish, and each publish also validates the subject,
rebuilds the header block and asks the flusher for a flush. ``NatsWriter.publish`` appends the
protocol command (``PUB``, or ``HPUB`` with a ``Nats-Msg-Id``) to the client's pending buffer,
exactly as ``Client._send_command`` does, and wakes the client's flusher once: every publish
made before the event loop turns again leaves in one socket write.

The buffer is nats-py's (``_pending``, ``_pending_data_size``, ``_flush_queue``, checked on
construction). When they are not there (another nats-py), or the client is not connected
(reconnecting: nats-py decides what it buffers), or the buffer is over nats-py's limit, the
publish goes through ``Client.publish`` in one ordered task instead: slower, same behaviour,
and never ahead of a publish made before it.
"""
from __future__ import annotations

import asyncio
import collections
import logging

log = logging.getLogger("nineslab.chat.nats_writes")

_CRLF = b"\r\n"


def pub_command(subject: str, payload: bytes, reply: str = "") -> bytes:
    return b"".join((f"PUB {subject} {reply} {len(payload)}\r\n".encode(), payload, _CRLF))


def hpub_command(subject: str, payload: bytes, reply: str, msg_id: str) -> bytes:
    """An ``HPUB`` whose only header is ``Nats-Msg-Id`` (ids are ours: hex, no CR/LF)."""
    header = b"NATS/1.0\r\nNats-Msg-Id: " + msg_id.encode() + b"\r\n\r\n"
    return b"".join((f"HPUB {subject} {reply} {len(header)} {len(header) + len(payload)}\r\n".encode(),
                     header, payload, _CRLF))


class NatsWriter:
    def __init__(self, nc, *, flush_delay: float = 0.0) -> None:
        self.nc = nc
        # how long a write waits for more publishes to join it: one socket write (and one
        # read and wake-up in the NATS server) for all the publishes of that time, not of one
        # event-loop turn; nats-py's own publishes (acks, fetches) take what waits along
        self.flush_delay = flush_delay
        self.kick: asyncio.TimerHandle | None = None
        # nats-py's internals this writes into; without them every publish takes the slow path
        self.direct = all(hasattr(nc, a) for a in ("_pending", "_pending_data_size", "_flush_queue",
                                                   "_max_pending_size", "_flusher_task", "stats"))
        self.slow: collections.deque[tuple[str, bytes, str, dict | None, object]] = collections.deque()
        self.slow_task: asyncio.Future | None = None
        self.direct_writes = 0           # publishes that took the fast path (tests check it is taken)

    def publish(self, subject: str, payload: bytes, *, reply: str = "", msg_id: str | None = None,
                on_error=None) -> None:
        """Publish without waiting. ``on_error(exc)`` is called (later) if the publish failed on
        the slow path; the fast path cannot fail here (a broken socket shows up on the read side)."""
        nc = self.nc
        if self.direct and not self.slow and nc.is_connected and not nc.is_draining_pubs \
                and nc._flusher_task is not None and not nc._flusher_task.done():
            cmd = hpub_command(subject, payload, reply, msg_id) if msg_id else pub_command(subject, payload, reply)
            if nc._max_pending_size <= 0 or nc._pending_data_size + len(cmd) <= nc._max_pending_size:
                nc._pending.append(cmd)
                nc._pending_data_size += len(cmd)
                nc.stats["out_msgs"] += 1
                nc.stats["out_bytes"] += len(payload)
                if self.flush_delay <= 0:
                    self._flush()
                elif self.kick is None:
                    self.kick = asyncio.get_running_loop().call_later(self.flush_delay, self._flush)
                self.direct_writes += 1
                return
        self.slow.append((subject, payload, reply, {"Nats-Msg-Id": msg_id} if msg_id else None, on_error))
        if self.slow_task is None:
            self.slow_task = asyncio.ensure_future(self._drain_slow())

    def _flush(self) -> None:
        """Wake nats-py's flusher, which writes the whole buffer (unless it is awake already)."""
        self.kick = None
        nc = self.nc
        if nc._pending_data_size > 0 and nc._flush_queue.empty() and nc.is_connected:
            nc._flush_queue.put_nowait(asyncio.get_running_loop().create_future())

    async def _drain_slow(self) -> None:
        try:
            while self.slow:
                subject, payload, reply, headers, on_error = self.slow[0]
                try:
                    await self.nc.publish(subject, payload, reply=reply, headers=headers)
                except Exception as exc:  # noqa: BLE001 - reported to the caller, or dropped (fire and forget)
                    if on_error is not None:
                        on_error(exc)
                self.slow.popleft()
        finally:
            self.slow_task = None
