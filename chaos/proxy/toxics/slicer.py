"""slicer: splits each chunk into pieces of about ``average_size`` ± ``size_variation``
bytes and waits ``delay`` microseconds between pieces, to mimic real TCP segmentation.

``offsets`` is upstream's recursive halving (done iteratively here): a span no longer
than average + variation is a piece, a longer one is cut near its middle, shifted by a
uniform draw in [-variation, +variation). Values upstream cannot survive (an average
below 1, a negative variation, a variation not below the average) are refused by the API.
"""
from __future__ import annotations

import random

from chaos.proxy.channel import EOF, Chunk
from chaos.proxy.toxics.base import Stub, Toxic, register, sleep


@register
class SlicerToxic(Toxic):
    TYPE = "slicer"
    ATTRIBUTES = ("average_size", "size_variation", "delay")

    average_size: int
    size_variation: int
    delay: int

    def validate(self) -> str | None:
        if self.average_size < 1:
            return f"slicer average_size must be 1 or more, got {self.average_size}"
        if self.size_variation < 0:
            return f"slicer size_variation must be 0 or more, got {self.size_variation}"
        if self.size_variation and self.size_variation >= self.average_size:
            return (f"slicer size_variation must be less than average_size "
                    f"({self.average_size}), got {self.size_variation}")
        if self.delay < 0:
            return f"slicer delay must be 0 or more, got {self.delay}"
        return None

    def offsets(self, size: int, rng: random.Random) -> list[tuple[int, int]]:
        """The (start, end) pieces of a chunk of ``size`` bytes, in order."""
        pieces: list[tuple[int, int]] = []
        spans = [(0, size)]
        variation = self.size_variation
        while spans:
            start, end = spans.pop()
            if (end - start) - self.average_size <= variation:
                pieces.append((start, end))
                continue
            shift = rng.randrange(variation * 2) - variation if variation > 0 else 0
            mid = start + (end - start) // 2 + shift
            spans.append((mid, end))
            spans.append((start, mid))
        return pieces

    async def pipe(self, stub: Stub) -> None:
        pause = self.delay / 1_000_000.0
        while True:
            chunk = await stub.read()
            if chunk is EOF:
                stub.close()
                return
            data = memoryview(chunk.data)  # slicing a view copies nothing
            for start, end in self.offsets(len(data), stub.rng):
                rest = Chunk(data[end:], chunk.ts) if end < len(data) else None
                await stub.write(Chunk(data[start:end], chunk.ts), rest)
                await sleep(pause)
