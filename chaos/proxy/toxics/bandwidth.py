"""bandwidth: limits a direction to ``rate`` KB/s, where 1 KB = 1000 B.

Each chunk is delayed by len/rate milliseconds; the error of every timer is carried into
the next delay so long transfers keep the exact rate. Chunks larger than rate × 100 B
leave as 100 ms slices. ``rate <= 0`` means unlimited.
"""
from __future__ import annotations

from chaos.proxy.channel import EOF, Chunk
from chaos.proxy.toxics.base import Stub, Toxic, register, sleep

SLICE_SECONDS = 0.1


@register
class BandwidthToxic(Toxic):
    TYPE = "bandwidth"
    ATTRIBUTES = ("rate",)

    rate: int

    def transfer_seconds(self, size: int) -> float:
        return size / (self.rate * 1000.0) if self.rate > 0 else 0.0

    async def pipe(self, stub: Stub) -> None:
        owed = 0.0  # seconds this stage still has to wait, carried across chunks
        while True:
            chunk = await stub.read()
            if chunk is EOF:
                stub.close()
                return
            if self.rate <= 0:
                owed = 0.0
            else:
                owed += self.transfer_seconds(len(chunk.data))
            slice_size = self.rate * 100
            if self.rate > 0 and len(chunk.data) > slice_size:
                chunk = Chunk(memoryview(chunk.data), chunk.ts)  # slice without copying
            while self.rate > 0 and len(chunk.data) > slice_size:
                await sleep(SLICE_SECONDS)
                rest = Chunk(chunk.data[slice_size:], chunk.ts)
                await stub.write(Chunk(chunk.data[:slice_size], chunk.ts), rest)
                chunk = rest
                owed -= SLICE_SECONDS
            start = stub.now()
            await sleep(owed)
            owed -= stub.now() - start
            await stub.write(chunk)
