"""Chunks and the channels that carry them between the stages of a toxic pipeline.

A :class:`Chunk` is a piece of a byte stream stamped with the loop time it was read
(toxics such as latency schedule from that stamp). A :class:`Channel` is a small,
single-consumer FIFO, the asyncio twin of a buffered Go channel: ``put`` waits while
it holds ``capacity`` items, ``get`` waits while it is empty, and both are safe to
cancel (a cancelled ``get`` takes nothing, a cancelled ``put`` puts nothing), which is
what lets a stage be interrupted without losing a byte.

``EOF`` (``None``) travels through the channels like a chunk and ends the stream.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Callable, Iterable

CHUNK_SIZE = 32 * 1024  # what Go's io.Copy reads at once; toxics see chunks of at most this
EOF = None


class Chunk:
    """A piece of the stream and the loop time it was received."""

    __slots__ = ("data", "ts")

    def __init__(self, data: bytes, ts: float) -> None:
        self.data = data
        self.ts = ts

    def __repr__(self) -> str:
        return f"Chunk({len(self.data)} B @ {self.ts:.6f})"


class Channel:
    """A cancellation-safe FIFO of chunks with one consumer at a time."""

    __slots__ = ("_items", "capacity", "_getter", "_putters", "_on_get")

    def __init__(self, capacity: int = 1, on_get: Callable[[], None] | None = None) -> None:
        self._items: deque[Chunk | None] = deque()
        self.capacity = max(1, capacity)
        self._getter: asyncio.Future | None = None
        self._putters: deque[asyncio.Future] = deque()
        self._on_get = on_get

    def set_on_get(self, on_get: Callable[[], None] | None) -> None:
        self._on_get = on_get

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self.capacity

    def put_nowait(self, item: Chunk | None) -> None:
        """Append ignoring capacity (the socket reader and interrupt flushes use this)."""
        self._items.append(item)
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    async def put(self, item: Chunk | None) -> None:
        while len(self._items) >= self.capacity:
            fut = asyncio.get_running_loop().create_future()
            self._putters.append(fut)
            try:
                await fut
            finally:
                try:
                    self._putters.remove(fut)
                except ValueError:
                    pass
        self.put_nowait(item)

    async def get(self) -> Chunk | None:
        while not self._items:
            fut = asyncio.get_running_loop().create_future()
            self._getter = fut
            try:
                await fut
            finally:
                if self._getter is fut:
                    self._getter = None
        item = self._items.popleft()
        self._wake_putter()
        if self._on_get is not None:
            self._on_get()
        return item

    def peek(self) -> Chunk | None:
        """The next item without taking it (the channel must not be empty)."""
        return self._items[0]

    def get_nowait(self) -> Chunk | None:
        item = self._items.popleft()
        self._wake_putter()
        if self._on_get is not None:
            self._on_get()
        return item

    def prepend(self, items: Iterable[Chunk | None]) -> None:
        """Put ``items`` (in order) in front of what this channel holds."""
        self._items.extendleft(reversed(list(items)))
        getter = self._getter
        if self._items and getter is not None and not getter.done():
            getter.set_result(None)

    def take_all(self) -> list[Chunk | None]:
        """Remove and return everything this channel holds; waiting producers may go on."""
        items = list(self._items)
        self._items.clear()
        for fut in self._putters:
            if not fut.done():
                fut.set_result(None)
        if self._on_get is not None:
            self._on_get()
        return items

    def _wake_putter(self) -> None:
        while self._putters:
            fut = self._putters[0]
            if not fut.done():
                fut.set_result(None)
                return
            self._putters.popleft()
