"""A link: one direction of one proxied connection (client→server is ``upstream``,
server→client is ``downstream``), with a zero-toxic fast path and a toxic pipeline.

Fast path: while the proxy has no toxic for this direction, bytes read from the source
socket go straight to the destination (spliced inside the kernel where Linux allows);
the only flow control is pausing the source while the destination is backed up.

Pipeline: once a toxic exists, reads become :class:`Chunk`\\ s of at most 32 KiB in the
head channel, each toxic is a :class:`Stage` (its own task reading one channel and
writing the next), and a writer task drains the tail into the destination. Adding,
updating or removing a toxic interrupts only the stages it touches — open connections
change at once, and whatever a stage held is flushed onward, so no byte is lost. When
the last toxic goes and the pipeline is empty, the link drops back to the fast path.

End of stream travels as ``EOF``; when the writer meets it the destination is closed
and the connection ends the other direction too (Toxiproxy has no half-close).
"""
from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Protocol

from chaos.proxy.channel import CHUNK_SIZE, EOF, Channel, Chunk
from chaos.proxy.toxics.base import Stub, Toxic
from chaos.proxy.toxics.noop import NoopToxic

if TYPE_CHECKING:
    from chaos.proxy.toxic_collection import ToxicWrapper

log = logging.getLogger("chaos.proxy")

HEAD_CAPACITY = 8  # chunks queued at the head before the source socket is paused
WRITE_BATCH = 256 * 1024  # the writer joins chunks that are due together up to this size
PASS_THROUGH = NoopToxic()


class Endpoint(Protocol):
    """The socket side a link reads from or writes to (``connection.Side``)."""

    lost: bool

    def write(self, data: bytes | memoryview) -> None: ...
    def set_paused(self, reason: str, paused: bool) -> None: ...
    def close(self) -> None: ...


class Stage:
    """One toxic running on one link; ``active`` is its toxicity draw."""

    __slots__ = ("wrapper", "stub", "task", "active")

    def __init__(self, wrapper: "ToxicWrapper", stub: Stub, active: bool) -> None:
        self.wrapper = wrapper
        self.stub = stub
        self.task: asyncio.Task | None = None
        self.active = active

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        toxic: Toxic = self.wrapper.toxic if self.active else PASS_THROUGH
        try:
            await toxic.pipe(self.stub)
        except asyncio.CancelledError:
            raise
        except Exception:  # a toxic bug must end the stream, never hang it
            log.exception("toxic %s failed; closing the link", self.wrapper.name)
            self.stub.close()


class Link:
    """One direction of a proxied connection."""

    def __init__(self, direction: str, source: Endpoint, dest: Endpoint, *,
                 rng: random.Random, on_finished, on_reset) -> None:
        self.direction = direction
        self.source = source
        self.dest = dest
        self.rng = rng
        self._on_finished = on_finished
        self._on_reset = on_reset
        self.fast = True
        self.head = Channel(HEAD_CAPACITY, on_get=self._head_taken)
        self.stages: list[Stage] = []
        self.writer: asyncio.Task | None = None
        self.dest_paused = False
        self._dest_resumed: asyncio.Future | None = None
        self.eof = False
        self.finished = False
        self.received = 0
        self.sent = 0
        self._loop = asyncio.get_running_loop()

    # -- building -------------------------------------------------------------

    def start(self, chain: list["ToxicWrapper"]) -> None:
        """Begin with the proxy's current toxics for this direction."""
        for wrapper in chain:
            self._append_stage(wrapper)
        if self.stages:
            self.fast = False
            self._start_writer()

    def _draw(self, wrapper: "ToxicWrapper") -> bool:
        return self.rng.random() < wrapper.toxicity

    def _append_stage(self, wrapper: "ToxicWrapper") -> Stage:
        channel_in = self.tail
        self._size_input(channel_in, wrapper.toxic)
        stub = Stub(channel_in, Channel(1), rng=self.rng, state=wrapper.toxic.new_state(),
                    on_reset=self._on_reset)
        stage = Stage(wrapper, stub, self._draw(wrapper))
        self.stages.append(stage)
        stage.start()
        return stage

    def _size_input(self, channel: Channel, toxic: Toxic | None) -> None:
        size = max(toxic.BUFFER_SIZE, 1) if toxic is not None else 1
        channel.capacity = max(size, HEAD_CAPACITY) if channel is self.head else size

    @property
    def tail(self) -> Channel:
        return self.stages[-1].stub.output if self.stages else self.head

    # -- reading (called by the source socket) -------------------------------

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.fast:
            self._write_dest(data)
            return
        ts = self._loop.time()
        if len(data) <= CHUNK_SIZE:
            self.head.put_nowait(Chunk(data, ts))
        else:
            view = memoryview(data)
            for i in range(0, len(data), CHUNK_SIZE):
                self.head.put_nowait(Chunk(view[i:i + CHUNK_SIZE], ts))
        if self.head.full():
            self.source.set_paused("head", True)

    def feed_eof(self) -> None:
        if self.eof:
            return
        self.eof = True
        if self.fast:
            self._finish()
        else:
            self.head.put_nowait(EOF)

    def _head_taken(self) -> None:
        if not self.head.full():
            self.source.set_paused("head", False)

    # -- writing (to the destination socket) ----------------------------------

    def _write_dest(self, data: bytes | memoryview) -> None:
        if not self.dest.lost:
            self.dest.write(data)
            self.sent += len(data)

    def dest_paused_changed(self, paused: bool) -> None:
        self.dest_paused = paused
        if not paused and self._dest_resumed is not None and not self._dest_resumed.done():
            self._dest_resumed.set_result(None)
        if self.fast:
            self.source.set_paused("dest", paused)

    def _start_writer(self) -> None:
        self.source.set_paused("dest", False)
        self.writer = self._loop.create_task(self._write_loop())

    async def _stop_writer(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.wait({writer})

    async def _write_loop(self) -> None:
        while True:
            tail = self.tail
            if not self.stages and not self.eof and not len(self.head):
                self._go_fast()
                return
            chunk = await tail.get()
            if chunk is EOF:
                self._finish()
                return
            data = chunk.data
            if len(tail) and tail.peek() is not EOF:
                # several chunks are due at once: one send instead of one per 32 KiB
                parts = [data]
                size = len(data)
                while size < WRITE_BATCH and len(tail) and tail.peek() is not EOF:
                    part = tail.get_nowait().data  # type: ignore[union-attr]
                    parts.append(part)
                    size += len(part)
                data = b"".join(parts)
            self._write_dest(data)
            while self.dest_paused and not self.dest.lost:
                self._dest_resumed = self._loop.create_future()
                await self._dest_resumed

    def _go_fast(self) -> None:
        self.fast = True
        self.writer = None
        self.source.set_paused("head", False)
        self.source.set_paused("dest", self.dest_paused)

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.dest.close()
        self._on_finished(self)

    # -- changing toxics on an open link --------------------------------------

    def _find(self, wrapper: "ToxicWrapper") -> int:
        for i, stage in enumerate(self.stages):
            if stage.wrapper.name == wrapper.name:
                return i
        return -1

    async def _interrupt(self, stage: Stage) -> bool:
        """Stop a stage's task, flushing what it held; False if the stage already closed."""
        if stage.stub.closed:
            return False
        task = stage.task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        if stage.stub.closed:
            return False
        if stage.stub.held is not None:
            stage.stub.output.put_nowait(stage.stub.held)
            stage.stub.held = None
        return True

    async def add_toxic(self, wrapper: "ToxicWrapper") -> None:
        if self.finished:
            return
        if self.fast:
            self.fast = False
        else:
            await self._stop_writer()
            if self.finished:
                return
        self._append_stage(wrapper)
        self._start_writer()

    async def update_toxic(self, wrapper: "ToxicWrapper") -> None:
        i = self._find(wrapper)
        if i < 0 or self.finished:
            return
        stage = self.stages[i]
        if await self._interrupt(stage):
            stage.wrapper = wrapper
            stage.active = self._draw(wrapper)  # toxicity is drawn again on update, as upstream
            stage.start()

    async def remove_toxic(self, wrapper: "ToxicWrapper") -> None:
        i = self._find(wrapper)
        if i < 0 or self.finished:
            return
        stage = self.stages[i]
        if not await self._interrupt(stage):
            return
        if wrapper.toxic.CLOSES_ON_REMOVE:
            stage.stub.close()  # timeout: removal ends the connection, as upstream
            return
        channel_in, channel_out = stage.stub.input, stage.stub.output
        # As upstream: the predecessor is interrupted and re-pointed at the removed stage's
        # output; what the removed stage had not read yet follows what it already passed on.
        producer = self.stages[i - 1] if i > 0 else None
        if producer is not None and not await self._interrupt(producer):
            return
        for item in channel_in.take_all():
            channel_out.put_nowait(item)
        del self.stages[i]
        if producer is not None:
            producer.stub.output = channel_out
            producer.start()  # same toxicity draw: re-chaining is not a new connection
        else:
            channel_in.set_on_get(None)
            channel_out.set_on_get(self._head_taken)
            self.head = channel_out  # the socket reader feeds the removed stage's output now
        consumer = self.stages[i] if i < len(self.stages) else None
        self._size_input(channel_out, consumer.wrapper.toxic if consumer is not None else None)
        if self.head is channel_out:
            self._head_taken()

    # -- teardown --------------------------------------------------------------

    def cancel(self) -> None:
        """Stop every task of this link at once (the proxy is going down)."""
        self.finished = True
        for stage in self.stages:
            if stage.task is not None:
                stage.task.cancel()
        if self.writer is not None:
            self.writer.cancel()
