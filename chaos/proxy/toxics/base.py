"""What a toxic is: a typed set of integer attributes and one ``pipe`` coroutine.

A toxic is a stage of a one-direction pipeline (see ``chaos.proxy.link``). Its ``pipe``
reads chunks from a :class:`Stub`, does something to them (delays, slices, drops,
truncates) and writes them on; it ends when it reads ``EOF`` (it then calls
``stub.close()``) or when the link interrupts it by cancelling its task. The contract
that keeps every byte: a chunk read from the stub is *held* until written (or
deliberately dropped with ``stub.drop()``), and the link flushes whatever is held when
it interrupts the stage to update, remove or re-chain it.

Attributes are JSON integers (Go ``int64``) listed in ``ATTRIBUTES`` in the order the
real server writes them; every toxic type registers itself under its API name.
"""
from __future__ import annotations

import asyncio
import random
from typing import Any, Callable, ClassVar

from chaos.proxy.channel import EOF, Channel, Chunk

REGISTRY: dict[str, type["Toxic"]] = {}
MAX_SLEEP_SECONDS = 10 * 365 * 86400.0  # absurd durations sleep "forever" without overflowing timers


def register(cls: type["Toxic"]) -> type["Toxic"]:
    REGISTRY[cls.TYPE] = cls
    return cls


class Stub:
    """One stage's view of the pipeline: its input, its output and its per-connection state."""

    __slots__ = ("input", "output", "state", "held", "closed", "rng", "loop", "on_reset")

    def __init__(self, input: Channel, output: Channel, *, rng: random.Random,
                 state: Any = None, on_reset: Callable[[], None] | None = None) -> None:
        self.input = input
        self.output = output
        self.state = state
        self.held: Chunk | None = None
        self.closed = False
        self.rng = rng
        self.loop = asyncio.get_running_loop()
        self.on_reset = on_reset

    async def read(self) -> Chunk | None:
        chunk = await self.input.get()
        self.held = chunk
        return chunk

    async def write(self, chunk: Chunk, rest: Chunk | None = None) -> None:
        """Pass ``chunk`` on; ``rest`` is what the toxic still holds afterwards."""
        await self.output.put(chunk)
        self.held = rest

    def drop(self) -> None:
        """The held chunk is thrown away on purpose (timeout, reset_peer)."""
        self.held = None

    def close(self) -> None:
        """End the stream downstream of this stage (the connection will close)."""
        if not self.closed:
            self.closed = True
            self.held = None
            self.output.put_nowait(EOF)

    def now(self) -> float:
        return self.loop.time()


async def sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(min(seconds, MAX_SLEEP_SECONDS))


class Toxic:
    """Base of every toxic type: integer attributes, validation and the pass-through pipe."""

    TYPE: ClassVar[str] = ""
    ATTRIBUTES: ClassVar[tuple[str, ...]] = ()
    BUFFER_SIZE: ClassVar[int] = 0  # capacity of the stage's input channel (Go's GetBufferSize)
    CLOSES_ON_REMOVE: ClassVar[bool] = False  # Go's CleanupToxic: removal ends the connection

    def __init__(self, **attributes: int) -> None:
        for name in self.ATTRIBUTES:
            setattr(self, name, int(attributes.get(name, 0)))

    def attributes(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.ATTRIBUTES}

    def copy_with(self, changes: dict[str, int]) -> "Toxic":
        merged = self.attributes()
        merged.update(changes)
        return type(self)(**merged)

    def validate(self) -> str | None:
        """Return why these attributes cannot work, or None. Upstream checks nothing."""
        return None

    def new_state(self) -> Any:
        """Per-connection state kept across updates (only limit_data has any)."""
        return None

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.read()
            if chunk is EOF:
                stub.close()
                return
            await stub.write(chunk)
